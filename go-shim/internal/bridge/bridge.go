// Package bridge translates an HTTP request into the parts the Rust core publishes, and the core's
// answer back into an HTTP response. It holds no parsing, Kafka or schema logic: that lives in the core.
package bridge

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// DefaultMaxBodyBytes is the body size limit when the config sets none.
const DefaultMaxBodyBytes = 1 << 20

// Settings are the plugin-level options; every other key of the plugin's config block goes to the core.
type Settings struct {
	// Topic, when set, is used for every request instead of the last segment of the path.
	Topic string
	// MaxBodyBytes is the largest body accepted; larger ones answer 413.
	MaxBodyBytes int64
}

// SplitConfig takes the plugin-level keys out of the plugin's config block and returns the rest, as
// JSON, for the core.
func SplitConfig(block map[string]interface{}) (Settings, []byte, error) {
	s := Settings{MaxBodyBytes: DefaultMaxBodyBytes}
	rest := make(map[string]interface{}, len(block))
	for k, v := range block {
		switch k {
		case "topic":
			t, ok := v.(string)
			if !ok || t == "" {
				return s, nil, errors.New("config key topic: must be a non-empty string")
			}
			s.Topic = t
		case "max_body_bytes":
			n, ok := v.(float64)
			if !ok || n < 1 || n != float64(int64(n)) {
				return s, nil, errors.New("config key max_body_bytes: must be a positive whole number")
			}
			s.MaxBodyBytes = int64(n)
		default:
			rest[k] = v
		}
	}
	core, err := json.Marshal(rest)
	if err != nil {
		return s, nil, fmt.Errorf("config: %w", err)
	}
	return s, core, nil
}

// Failure is an answer the shim gives itself, before the core is called.
type Failure struct {
	Status  int
	Message string
}

// Parts are what the core's kk_publish_message takes from an HTTP request.
type Parts struct {
	Topic string
	// Key is the record key; HasKey is false when Message-Key was absent or empty.
	Key    string
	HasKey bool
	// Headers is the Message-Headers list (`k1=v1,k2=v2`, percent-encoded), for the core to parse.
	Headers string
	Body    []byte
}

// Read takes the parts from r: topic from the settings or the last path segment, key from
// Message-Key, the Message-Headers list (repeated headers joined, as HTTP defines), the body up to the limit.
func Read(r *http.Request, s Settings) (Parts, *Failure) {
	p := Parts{Topic: s.Topic, Key: r.Header.Get("Message-Key"), Headers: strings.Join(r.Header.Values("Message-Headers"), ",")}
	p.HasKey = p.Key != ""
	if p.Topic == "" {
		p.Topic = lastSegment(r.URL.Path)
	}
	body, f := readBody(r, s.MaxBodyBytes)
	p.Body = body
	return p, f
}

func lastSegment(path string) string {
	path = strings.TrimRight(path, "/")
	return path[strings.LastIndexByte(path, '/')+1:]
}

func readBody(r *http.Request, limit int64) ([]byte, *Failure) {
	tooLarge := &Failure{http.StatusRequestEntityTooLarge, fmt.Sprintf("body: larger than the limit of %d bytes", limit)}
	if r.ContentLength > limit {
		return nil, tooLarge
	}
	if r.Body == nil {
		return nil, nil
	}
	// The usual case: one buffer of the right size. KrakenD's backend requests may leave ContentLength
	// at 0 with a body, which net/http defines as unknown, as is -1.
	if r.ContentLength > 0 {
		body := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, &Failure{http.StatusBadRequest, "body: " + err.Error()}
		}
		return body, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, &Failure{http.StatusBadRequest, "body: " + err.Error()}
	}
	if int64(len(body)) > limit {
		return nil, tooLarge
	}
	return body, nil
}

// Write answers the core's response JSON with the status the core gave.
func Write(w http.ResponseWriter, status int, response []byte) {
	if status < 200 || status > 599 {
		WriteFailure(w, &Failure{http.StatusInternalServerError, "the core answered without a valid status"})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(response)
}

// WriteFailure answers f in the same shape as the core's answers.
func WriteFailure(w http.ResponseWriter, f *Failure) {
	body, _ := json.Marshal(struct {
		StatusCode string `json:"statusCode"`
		Message    string `json:"message"`
	}{strconv.Itoa(f.Status), f.Message})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(f.Status)
	_, _ = w.Write(body)
}
