// Package bridge translates an HTTP request into the message the core publishes, and the core's answer
// back into the HTTP response. It decides nothing: what is valid, and every answer, comes from the core.
package bridge

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/krakend-kafka/krakend-kafka/go-shim/internal/core"
)

// Read takes the message from r: its path, Message-Key, the Message-Headers list (repeated headers
// joined, as HTTP defines), the W3C trace context (traceparent, tracestate), Idempotency-Key, the body,
// read up to one byte past limit so the core can tell it is over,
// and how long the gateway waits for the answer (the endpoint's timeout, which the plugin's config
// does not hold).
func Read(r *http.Request, limit int64) core.Message {
	m := core.Message{
		Path:           r.URL.Path,
		Key:            r.Header.Get("Message-Key"),
		Headers:        strings.Join(r.Header.Values("Message-Headers"), ","),
		Traceparent:    r.Header.Get("Traceparent"),
		Tracestate:     strings.Join(r.Header.Values("Tracestate"), ","),
		IdempotencyKey: r.Header.Get("Idempotency-Key"),
	}
	m.Body, m.BodyRead = readBody(r, limit)
	if deadline, ok := r.Context().Deadline(); ok {
		m.Wait = max(time.Until(deadline), time.Millisecond)
	}
	return m
}

func readBody(r *http.Request, limit int64) ([]byte, int) {
	if r.ContentLength > limit {
		return nil, core.BodyOverLimit
	}
	if r.Body == nil {
		return nil, core.BodyComplete
	}
	// The usual case: one buffer of the right size. KrakenD's backend requests may leave ContentLength
	// at 0 with a body, which net/http defines as unknown, as is -1.
	if r.ContentLength > 0 {
		body := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, core.BodyBroken
		}
		return body, core.BodyComplete
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	switch {
	case err != nil:
		return nil, core.BodyBroken
	case int64(len(body)) > limit:
		return nil, core.BodyOverLimit
	}
	return body, core.BodyComplete
}

// Write answers with the core's status and response bytes, as they are, and its Retry-After.
func Write(w http.ResponseWriter, a core.Answer) {
	w.Header().Set("Content-Type", "application/json")
	if a.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(a.RetryAfter))
	}
	w.WriteHeader(a.Status)
	_, _ = w.Write(a.Response)
}
