package gateway

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
)

// readBody reads a request body of at most limit bytes to its end (so the
// payload's signature is verified) and checks Content-MD5 and any
// additional checksum header.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	spec, err := parseChecksum(r.Header)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, bodyError(err)
	}
	if int64(len(body)) > limit {
		return nil, ErrMalformedXML.msg("The XML you provided was larger than the maximum of %d bytes allowed.", limit)
	}
	if err := checkContentMD5(r.Header, body); err != nil {
		return nil, err
	}
	if spec != nil && !spec.fromTrailer && spec.value != "" {
		h := newChecksum(spec.alg)
		h.Write(body)
		if base64.StdEncoding.EncodeToString(h.Sum(nil)) != spec.value {
			return nil, ErrBadDigest.msg("The %s you specified did not match the calculated checksum.", spec.alg)
		}
	}
	return body, nil
}

// checkContentMD5 verifies the Content-MD5 header, if present, against
// body.
func checkContentMD5(h http.Header, body []byte) error {
	want, present, err := contentMD5(h)
	if err != nil || !present {
		return err
	}
	got := md5.Sum(body)
	if !bytes.Equal(got[:], want) {
		return ErrBadDigest
	}
	return nil
}

// contentMD5 decodes the Content-MD5 header.
func contentMD5(h http.Header) (sum []byte, present bool, err error) {
	vs, ok := h["Content-Md5"]
	if !ok {
		return nil, false, nil
	}
	sum, err = base64.StdEncoding.DecodeString(vs[0])
	if err != nil || len(sum) != md5.Size {
		return nil, true, ErrInvalidDigest
	}
	return sum, true, nil
}

// readXML reads and parses an XML request body into v. An empty body is
// accepted when allowEmpty is set, leaving v unchanged.
func readXML(r *http.Request, v any, limit int64, allowEmpty bool) error {
	body, err := readBody(r, limit)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if allowEmpty {
			return nil
		}
		return ErrMalformedXML
	}
	return parseXML(body, v)
}

// parseXML decodes one XML document into v, rejecting trailing content.
func parseXML(body []byte, v any) error {
	d := xml.NewDecoder(bytes.NewReader(body))
	if err := d.Decode(v); err != nil {
		return ErrMalformedXML
	}
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return ErrMalformedXML
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(bytes.TrimSpace(t)) != 0 {
				return ErrMalformedXML
			}
		case xml.Comment, xml.ProcInst:
		default:
			return ErrMalformedXML
		}
	}
}
