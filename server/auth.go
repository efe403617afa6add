package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"strings"
)

// HashTokens keeps accepted tokens as their SHA-256, the form CheckBearer
// compares; empty tokens are dropped, so they never match.
func HashTokens(tokens []string) [][32]byte {
	out := make([][32]byte, 0, len(tokens))
	for _, t := range tokens {
		if t != "" {
			out = append(out, sha256.Sum256([]byte(t)))
		}
	}
	return out
}

// CheckBearer compares a bearer token with every accepted one in constant
// time: hashing first makes every comparison the same length, and the loop
// never stops early, so timing tells nothing about which token matched.
func CheckBearer(header string, accepted [][32]byte) bool {
	token, ok := strings.CutPrefix(header, "Bearer ")
	if !ok {
		return false
	}
	_, ok = MatchToken(token, accepted)
	return ok
}

// MatchToken finds a token among the accepted ones (HashTokens) in constant
// time, and says which matched: the position, for a record of who signed
// in that names no secret.
func MatchToken(token string, accepted [][32]byte) (int, bool) {
	if token == "" {
		return -1, false
	}
	sum := sha256.Sum256([]byte(token))
	found := -1
	for i, a := range accepted {
		eq := subtle.ConstantTimeCompare(sum[:], a[:])
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	return found, found >= 0
}
