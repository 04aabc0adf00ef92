package sse

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// Keyring holds the SSE-S3 master keys, by id. The last key listed is the
// newest: new data keys are wrapped with it, while every key listed still
// unwraps the data keys it wrapped. Rotation adds a key at the end; a key
// can be dropped once no record names it (see docs/ARCHITECTURE.md).
type Keyring struct {
	keys   map[string][]byte
	newest string
}

// maxKeyIDLen bounds a key id: it is stored in every SSE-S3 record.
const maxKeyIDLen = 32

// ParseKeyring parses master keys: entries "ID:KEY" separated by
// newlines, commas or blanks, where ID is 1 to 32 letters, digits, '.',
// '_' or '-', and KEY is the standard base64 of 32 bytes. A '#' starts a
// comment that runs to the end of its line. Ids must be distinct.
func ParseKeyring(text string) (*Keyring, error) {
	kr := &Keyring{keys: map[string][]byte{}}
	for lineNo, line := range strings.Split(text, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		for _, entry := range strings.FieldsFunc(line, func(r rune) bool {
			return r == ',' || r == ' ' || r == '\t' || r == '\r'
		}) {
			id, b64, ok := strings.Cut(entry, ":")
			if !ok {
				return nil, fmt.Errorf("master key on line %d: want ID:BASE64KEY", lineNo+1)
			}
			if err := checkKeyID(id); err != nil {
				return nil, fmt.Errorf("master key on line %d: %w", lineNo+1, err)
			}
			if _, dup := kr.keys[id]; dup {
				return nil, fmt.Errorf("master key id %q is listed twice", id)
			}
			key, err := base64.StdEncoding.DecodeString(b64)
			if err != nil || len(key) != KeySize {
				return nil, fmt.Errorf("master key %q: want the base64 of %d bytes (e.g. head -c 32 /dev/urandom | base64)", id, KeySize)
			}
			kr.keys[id] = key
			kr.newest = id
		}
	}
	if len(kr.keys) == 0 {
		return nil, errors.New("no master key given")
	}
	return kr, nil
}

func checkKeyID(id string) error {
	if id == "" || len(id) > maxKeyIDLen {
		return fmt.Errorf("key id %q: want 1 to %d characters", id, maxKeyIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("key id %q: only letters, digits, '.', '_' and '-'", id)
		}
	}
	return nil
}

// LoadKeyring reads the master keys from a file, or from the text of an
// environment variable; at most one may be given. Neither given is no
// keyring (nil), not an error. A file others can read is refused: the
// keys open every SSE-S3 object.
func LoadKeyring(path, env string) (*Keyring, error) {
	switch {
	case path != "" && env != "":
		return nil, errors.New("master keys given both as a file and in the environment: give one")
	case path != "":
		st, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		if st.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("master key file %s has mode %v: other users could read it; chmod 600 it", path, st.Mode().Perm())
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		kr, err := ParseKeyring(string(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return kr, nil
	case env != "":
		return ParseKeyring(env)
	}
	return nil, nil
}

// Newest returns the id of the key new data keys are wrapped with.
func (kr *Keyring) Newest() string { return kr.newest }

// IDs returns the key ids, the newest last.
func (kr *Keyring) IDs() []string {
	out := make([]string, 0, len(kr.keys))
	for id := range kr.keys {
		if id != kr.newest {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return append(out, kr.newest)
}

// ErrUnknownKeyID is a record wrapped with a master key the keyring does
// not hold.
var ErrUnknownKeyID = errors.New("sse: no master key with that id")

// Wrap wraps k with the newest master key and returns its id and the
// wrapped key.
func (kr *Keyring) Wrap(k DataKey) (id string, wrapped []byte) {
	return kr.newest, wrap(kr.keys[kr.newest], k, aadWrapS3+kr.newest)
}

// Unwrap returns the data key wrapped by master key id.
func (kr *Keyring) Unwrap(id string, wrapped []byte) (DataKey, error) {
	key, ok := kr.keys[id]
	if !ok {
		return DataKey{}, fmt.Errorf("%w %q", ErrUnknownKeyID, id)
	}
	return unwrap(key, wrapped, aadWrapS3+id)
}
