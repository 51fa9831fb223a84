package ndmp

import (
	"crypto/md5"
	"crypto/subtle"
)

// MaxPasswordLen is the number of password bytes the MD5 digest uses;
// longer passwords are truncated (draft section 3.1.2).
const MaxPasswordLen = 32

// ChallengeSize is the size of the MD5 authentication challenge.
const ChallengeSize = 64

// MD5Digest computes the auth_digest of NDMP MD5 authentication (draft
// section 3.1.2): the MD5 sum of a 128-byte message made of the password,
// zero padding, the server's 64-byte challenge and the password again. The
// password is truncated to 32 bytes, so the padding is 64-2*len bytes. A
// server must refuse an empty password before calling MD5Digest.
func MD5Digest(password string, challenge [ChallengeSize]byte) [md5.Size]byte {
	pw := []byte(password)
	if len(pw) > MaxPasswordLen {
		pw = pw[:MaxPasswordLen]
	}
	var m [2 * ChallengeSize]byte
	copy(m[:], pw)
	copy(m[ChallengeSize-len(pw):], challenge[:])
	copy(m[2*ChallengeSize-len(pw):], pw)
	return md5.Sum(m[:])
}

// VerifyMD5 reports whether digest is the MD5 answer to challenge for
// password, as a server checks CONNECT_CLIENT_AUTH. An empty password never
// verifies (the draft requires NDMP_NOT_AUTHORIZED_ERR). The comparison
// takes the same time whatever the digest.
func VerifyMD5(password string, challenge [ChallengeSize]byte, digest [md5.Size]byte) bool {
	if password == "" {
		return false
	}
	want := MD5Digest(password, challenge)
	return subtle.ConstantTimeCompare(want[:], digest[:]) == 1
}
