// Package e2e holds Ambrosia's end-to-end tests: they build the real
// ambrosia binary, start it on loopback ports and drive it with real XMPP
// clients (slixmpp, go-sendxmpp) and with raw sockets.
//
// Set AMBROSIA_E2E=1 to make a missing client tool a failure instead of a
// skip; test.sh does so. The -short flag skips the package.
package e2e
