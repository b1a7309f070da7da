// Package bridge translates an HTTP request into the Rust core's publish envelope, and the core's
// answer back into an HTTP response. It holds no Kafka or schema logic: that lives in the Rust core.
package bridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
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

func (f *Failure) Error() string { return f.Message }

// Envelope is the seed Lambda's request, which the core's publish takes.
type Envelope struct {
	TopicName string            `json:"topicName"`
	Body      json.RawMessage   `json:"body"`
	Headers   map[string]string `json:"headers,omitempty"`
	Key       *string           `json:"key,omitempty"`
}

// BuildEnvelope reads the request into the core's JSON envelope: topic from the settings or the last
// path segment, key from Message-Key, record headers from Message-Headers, the body embedded as raw JSON.
func BuildEnvelope(r *http.Request, s Settings) ([]byte, *Failure) {
	env := Envelope{TopicName: s.Topic}
	if env.TopicName == "" {
		env.TopicName = lastSegment(r.URL.Path)
	}
	if key := r.Header.Get("Message-Key"); key != "" {
		env.Key = &key
	}
	headers, err := ParseHeaderList(strings.Join(r.Header.Values("Message-Headers"), ","))
	if err != nil {
		return nil, &Failure{http.StatusBadRequest, "message-headers: " + err.Error()}
	}
	env.Headers = headers
	body, f := readBody(r, s.MaxBodyBytes)
	if f != nil {
		return nil, f
	}
	if !json.Valid(body) {
		return nil, &Failure{http.StatusBadRequest, "body: not valid JSON"}
	}
	env.Body = body
	out, err := json.Marshal(env)
	if err != nil { // only reachable with invalid JSON, checked above
		return nil, &Failure{http.StatusBadRequest, "body: " + err.Error()}
	}
	return out, nil
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
		return nil, &Failure{http.StatusBadRequest, "body: missing"}
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

// ParseHeaderList parses `k1=v1,k2=v2`. Names and values are trimmed at the ends and percent-decoded,
// so they may hold any UTF-8, `,` and `=` (as %2C and %3D). An empty list means no headers.
func ParseHeaderList(list string) (map[string]string, error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	headers := map[string]string{}
	for i, item := range strings.Split(list, ",") {
		name, value, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("item %d (%q) is not name=value", i+1, strings.TrimSpace(item))
		}
		name, err := decode(name)
		if err != nil {
			return nil, fmt.Errorf("item %d: name: %w", i+1, err)
		}
		if name == "" {
			return nil, fmt.Errorf("item %d has an empty name", i+1)
		}
		value, err = decode(value)
		if err != nil {
			return nil, fmt.Errorf("item %d (%s): value: %w", i+1, name, err)
		}
		if _, dup := headers[name]; dup {
			return nil, fmt.Errorf("header %s is given twice", name)
		}
		headers[name] = value
	}
	return headers, nil
}

func decode(s string) (string, error) {
	d, err := url.PathUnescape(strings.TrimSpace(s))
	if err != nil {
		return "", fmt.Errorf("bad percent-encoding in %q", strings.TrimSpace(s))
	}
	if !utf8.ValidString(d) {
		return "", fmt.Errorf("%q is not UTF-8 once decoded", strings.TrimSpace(s))
	}
	return d, nil
}

// Write answers the core's response JSON with the HTTP status equal to its statusCode.
func Write(w http.ResponseWriter, response []byte) {
	var r struct {
		StatusCode string `json:"statusCode"`
	}
	status, err := 0, json.Unmarshal(response, &r)
	if err == nil {
		status, err = strconv.Atoi(r.StatusCode)
	}
	if err != nil || status < 200 || status > 599 {
		WriteFailure(w, &Failure{http.StatusInternalServerError, "the core answered without a valid statusCode"})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(response)
}

// WriteFailure answers f in the same shape as the core's answers.
func WriteFailure(w http.ResponseWriter, f *Failure) {
	body, _ := json.Marshal(map[string]string{"statusCode": strconv.Itoa(f.Status), "message": f.Message})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(f.Status)
	_, _ = w.Write(bytes.TrimSpace(body))
}
