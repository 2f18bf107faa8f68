package c2s_test

import (
	"crypto/sha1"
	"crypto/sha512"
)

func sha1Sum(s string) []byte {
	h := sha1.Sum([]byte(s))
	return h[:]
}

func sha512Sum(s string) []byte {
	h := sha512.Sum512([]byte(s))
	return h[:]
}
