// Command notehelper signs, cosigns and opens C2SP signed notes with Go's reference
// golang.org/x/mod/sumdb/note, so the tests can check custodiet's notes against it.
// Built by tests/unit/ledger/test_go_interop.py in GOPATH mode (GO111MODULE=off) against
// Debian's golang-golang-x-mod-dev; it uses nothing else but the standard library.
//
//	notehelper keygen NAME              print "SKEY\nVKEY\n" for a new Ed25519 log key
//	notehelper sign SKEY < TEXT         print TEXT signed by SKEY
//	notehelper cosign NAME SEEDHEX TIME < BODY
//	                                    print the tlog-cosignature/v1 line over BODY and the
//	                                    witness vkey (0x04) on the next line
//	notehelper open VKEY [WVKEY...] < NOTE
//	                                    note.Open with the log key (and witness keys): print
//	                                    the verified signer names, or exit 1 with the error
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

const cosignatureType = 0x04

// cosigner is a tlog-cosignature/v1 witness key: a note.Signer and a note.Verifier.
type cosigner struct {
	name string
	hash uint32
	key  ed25519.PrivateKey
	pub  ed25519.PublicKey
	time uint64
}

func keyHash(name string, typ byte, pub []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(name + "\n"))
	h.Write([]byte{typ})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil)[:4])
}

func message(text []byte, t uint64) []byte {
	return append([]byte(fmt.Sprintf("cosignature/v1\ntime %d\n", t)), text...)
}

func (c *cosigner) Name() string    { return c.name }
func (c *cosigner) KeyHash() uint32 { return c.hash }

func (c *cosigner) Sign(msg []byte) ([]byte, error) {
	stamp := make([]byte, 8)
	binary.BigEndian.PutUint64(stamp, c.time)
	return append(stamp, ed25519.Sign(c.key, message(msg, c.time))...), nil
}

func (c *cosigner) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	t := binary.BigEndian.Uint64(sig[:8])
	if t >= 1<<63 {
		return false
	}
	return ed25519.Verify(c.pub, message(msg, t), sig[8:])
}

func witnessVerifier(vkey string) (note.Verifier, error) {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return nil, fmt.Errorf("malformed witness vkey")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 33 || raw[0] != cosignatureType {
		return nil, fmt.Errorf("malformed witness vkey")
	}
	pub := ed25519.PublicKey(raw[1:])
	return &cosigner{name: parts[0], hash: keyHash(parts[0], cosignatureType, pub), pub: pub}, nil
}

func run(args []string, stdin []byte) (string, error) {
	switch {
	case len(args) == 2 && args[0] == "keygen":
		skey, vkey, err := note.GenerateKey(rand.Reader, args[1])
		return skey + "\n" + vkey + "\n", err
	case len(args) == 2 && args[0] == "sign":
		signer, err := note.NewSigner(args[1])
		if err != nil {
			return "", err
		}
		signed, err := note.Sign(&note.Note{Text: string(stdin)}, signer)
		return string(signed), err
	case len(args) == 4 && args[0] == "cosign":
		seed, err := hex.DecodeString(args[2])
		if err != nil || len(seed) != ed25519.SeedSize {
			return "", fmt.Errorf("bad seed")
		}
		t, err := strconv.ParseUint(args[3], 10, 64)
		if err != nil {
			return "", err
		}
		key := ed25519.NewKeyFromSeed(seed)
		pub := key.Public().(ed25519.PublicKey)
		c := &cosigner{args[1], keyHash(args[1], cosignatureType, pub), key, pub, t}
		signed, err := note.Sign(&note.Note{Text: string(stdin)}, c)
		if err != nil {
			return "", err
		}
		lines := strings.Split(strings.TrimSuffix(string(signed), "\n"), "\n")
		wvkey := fmt.Sprintf("%s+%08x+%s", c.name, c.hash,
			base64.StdEncoding.EncodeToString(append([]byte{cosignatureType}, pub...)))
		return lines[len(lines)-1] + "\n" + wvkey + "\n", nil
	case len(args) >= 2 && args[0] == "open":
		log, err := note.NewVerifier(args[1])
		if err != nil {
			return "", err
		}
		verifiers := []note.Verifier{log}
		for _, w := range args[2:] {
			v, err := witnessVerifier(w)
			if err != nil {
				return "", err
			}
			verifiers = append(verifiers, v)
		}
		n, err := note.Open(stdin, note.VerifierList(verifiers...))
		if err != nil {
			return "", err
		}
		var out bytes.Buffer
		for _, sig := range n.Sigs {
			out.WriteString(sig.Name + "\n")
		}
		return out.String(), nil
	}
	return "", fmt.Errorf("usage: notehelper keygen|sign|cosign|open ...")
}

func main() {
	stdin, err := io.ReadAll(os.Stdin)
	if err == nil {
		var out string
		out, err = run(os.Args[1:], stdin)
		if err == nil {
			fmt.Print(out)
			return
		}
	}
	fmt.Fprintln(os.Stderr, "error:", err)
	os.Exit(1)
}
