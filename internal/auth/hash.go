package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// HashParams is the cost of the argon2id password hash.
type HashParams struct {
	Time    uint32 // passes
	Memory  uint32 // KiB
	Threads uint8
}

// DefaultHashParams returns the cost that follows OWASP's argon2id
// recommendation (19 MiB, two passes, one thread).
func DefaultHashParams() HashParams { return HashParams{Time: 2, Memory: 19 * 1024, Threads: 1} }

const (
	saltLen = 16
	keyLen  = 32
	// Bounds a stored hash must respect, so that a damaged catalog cannot
	// make CheckPassword allocate without limit.
	maxMemory = 1 << 20 // KiB (1 GiB)
	maxTime   = 64
)

// HashPassword returns the PHC string
// $argon2id$v=19$m=<KiB>,t=<passes>,p=<threads>$<salt>$<hash> of password
// with a fresh random salt.
func HashPassword(password string, p HashParams) string {
	salt := make([]byte, saltLen)
	_, _ = rand.Read(salt) // crypto/rand.Read never fails (Go 1.24+)
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, keyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		enc.EncodeToString(salt), enc.EncodeToString(key))
}

// parsedHash is a decoded PHC string.
type parsedHash struct {
	params HashParams
	salt   []byte
	key    []byte
}

var errBadHash = errors.New("auth: malformed password hash")

// parseHash decodes a PHC string made by HashPassword. It is strict: an
// unknown algorithm or version, parameters out of bounds, or bad base64 are
// errors.
func parseHash(h string) (parsedHash, error) {
	var ph parsedHash
	parts := strings.Split(h, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return ph, errBadHash
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return ph, fmt.Errorf("%w: version %q", errBadHash, parts[2])
	}
	var seen [3]bool
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return ph, errBadHash
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return ph, fmt.Errorf("%w: parameter %q", errBadHash, kv)
		}
		var i int
		switch k {
		case "m":
			i, ph.params.Memory = 0, uint32(n)
		case "t":
			i, ph.params.Time = 1, uint32(n)
		case "p":
			if n > 255 {
				return ph, fmt.Errorf("%w: parameter %q", errBadHash, kv)
			}
			i, ph.params.Threads = 2, uint8(n)
		default:
			return ph, fmt.Errorf("%w: parameter %q", errBadHash, kv)
		}
		if seen[i] {
			return ph, fmt.Errorf("%w: parameter %q twice", errBadHash, k)
		}
		seen[i] = true
	}
	p := ph.params
	if !seen[0] || !seen[1] || !seen[2] || p.Time < 1 || p.Time > maxTime || p.Threads < 1 ||
		p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory {
		return ph, fmt.Errorf("%w: parameters out of range", errBadHash)
	}
	enc := base64.RawStdEncoding.Strict()
	var err error
	if ph.salt, err = enc.DecodeString(parts[4]); err != nil || len(ph.salt) < 8 || len(ph.salt) > 64 {
		return ph, fmt.Errorf("%w: salt", errBadHash)
	}
	if ph.key, err = enc.DecodeString(parts[5]); err != nil || len(ph.key) < 16 || len(ph.key) > 64 {
		return ph, fmt.Errorf("%w: key", errBadHash)
	}
	return ph, nil
}

// verifyPassword reports whether password matches the PHC string h,
// comparing in constant time.
func verifyPassword(h, password string) (bool, error) {
	ph, err := parseHash(h)
	if err != nil {
		return false, err
	}
	key := argon2.IDKey([]byte(password), ph.salt, ph.params.Time, ph.params.Memory, ph.params.Threads, uint32(len(ph.key)))
	return subtle.ConstantTimeCompare(key, ph.key) == 1, nil
}

// MinPasswordLength and MaxPasswordLength bound login passwords.
const (
	MinPasswordLength = 8
	MaxPasswordLength = 128
)

// CheckPasswordRules applies ONTAP's default login password rules: at
// least 8 characters with at least one letter and one digit, and (for
// Tapestry) at most 128 bytes without control characters.
func CheckPasswordRules(password string) error {
	if len(password) < MinPasswordLength {
		return errf(ErrInvalidArgument, "the password must be at least %d characters long", MinPasswordLength)
	}
	if len(password) > MaxPasswordLength {
		return errf(ErrInvalidArgument, "the password must be at most %d characters long", MaxPasswordLength)
	}
	var letter, digit bool
	for _, r := range password {
		switch {
		case r < 0x20 || r == 0x7f:
			return errf(ErrInvalidArgument, "the password must not contain control characters")
		case r >= '0' && r <= '9':
			digit = true
		case r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
			letter = true
		}
	}
	if !letter || !digit {
		return errf(ErrInvalidArgument, "the password must contain both letters and digits")
	}
	return nil
}
