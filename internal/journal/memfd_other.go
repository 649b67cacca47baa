//go:build !amd64 && !arm64

package journal

// sysMemfdCreate is unknown here: an entry too big for a datagram fails.
const sysMemfdCreate = -1
