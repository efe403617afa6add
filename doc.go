// Package storegate holds the domain vocabulary every other package shares:
// events, commands, grants, platforms and the error codes. It imports nothing
// outside the standard library.
package storegate
