package journal

// sysMemfdCreate is memfd_create(2); package syscall does not name it on
// every architecture.
const sysMemfdCreate = 319
