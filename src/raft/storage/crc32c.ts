// The CRC-32C moved to src/crc32c.ts, where the SDK may load it too (it checks a backup as it
// arrives); this keeps the storage's and the snapshot's imports, and any in flight on other branches.
export { crc32c } from '../../crc32c.js';
