package bridge

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/krakend-kafka/krakend-kafka/go-shim/internal/core"
)

func request(path, body string, headers map[string]string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "http://backend"+path, strings.NewReader(body))
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	return r
}

func TestReadTakesThePartsAsSent(t *testing.T) {
	body := `{"some_message":"a \"quoted\" </script> text","n":[1,2]}`
	r := request("/v1/event/MyTopic", body, map[string]string{"Message-Key": `key "1"`, "Idempotency-Key": `"k-1"`})
	r.Header.Add("Message-Headers", "my_key=x-y_z")
	r.Header.Add("Message-Headers", "k=hello%2C%20world")
	r.Header.Add("Tracestate", "a=1")
	r.Header.Add("Tracestate", "b=2")
	want := core.Message{
		Path: "/v1/event/MyTopic", Key: `key "1"`, Headers: "my_key=x-y_z,k=hello%2C%20world",
		Tracestate: "a=1,b=2", IdempotencyKey: `"k-1"`, Body: []byte(body),
	}
	if m := Read(r, 1<<20); !reflect.DeepEqual(m, want) {
		t.Errorf("%+v\nwant %+v", m, want)
	}
	if m := Read(request("/t/", `{"a":1}`, nil), 10); m.Key != "" || m.Headers != "" || m.Path != "/t/" {
		t.Errorf("%+v", m)
	}
}

type broken struct{}

func (broken) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestReadTellsHowLongTheGatewayWaits(t *testing.T) {
	if m := Read(request("/t", "{}", nil), 1<<20); m.Wait != 0 {
		t.Errorf("no deadline: %v", m.Wait)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if m := Read(request("/t", "{}", nil).WithContext(ctx), 1<<20); m.Wait <= 2*time.Second || m.Wait > 3*time.Second {
		t.Errorf("3 s deadline: %v", m.Wait)
	}
	past, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if m := Read(request("/t", "{}", nil).WithContext(past), 1<<20); m.Wait != time.Millisecond {
		t.Errorf("a deadline passed is the shortest wait, not none: %v", m.Wait)
	}
}

func TestReadStopsAtTheLimitAndSaysHowTheBodyEnded(t *testing.T) {
	large := `{"a":"` + strings.Repeat("x", 100) + `"}`
	exact := `{"a":"` + strings.Repeat("x", 92) + `"}` // 100 bytes
	for _, c := range []struct {
		name   string
		body   string
		length int64 // -1 and 0: unknown, as chunked requests and KrakenD's backend requests have
		want   int
	}{
		{"declared over the limit", large, int64(len(large)), core.BodyOverLimit},
		{"chunked over the limit", large, -1, core.BodyOverLimit},
		{"unknown length over the limit", large, 0, core.BodyOverLimit},
		{"exactly the limit, chunked", exact, -1, core.BodyComplete},
		{"exactly the limit", exact, 100, core.BodyComplete},
		{"unknown length", `{"a":1}`, 0, core.BodyComplete},
	} {
		r := request("/t", c.body, nil)
		r.ContentLength = c.length
		m := Read(r, 100)
		if m.BodyRead != c.want {
			t.Errorf("%s: body read %d, want %d", c.name, m.BodyRead, c.want)
		}
		if c.want == core.BodyComplete && string(m.Body) != c.body {
			t.Errorf("%s: body %q", c.name, m.Body)
		}
		if c.want != core.BodyComplete && len(m.Body) != 0 {
			t.Errorf("%s: %d bytes kept of a refused body", c.name, len(m.Body))
		}
	}
	for _, length := range []int64{10, -1} {
		r := httptest.NewRequest(http.MethodPost, "http://backend/t", broken{})
		r.ContentLength = length
		if m := Read(r, 100); m.BodyRead != core.BodyBroken {
			t.Errorf("length %d: %+v", length, m)
		}
	}
}

func TestWriteCopiesTheCoreAnswer(t *testing.T) {
	w := httptest.NewRecorder()
	Write(w, core.Answer{Status: 404, Response: []byte(`{"statusCode":"404","message":"no schema"}`)})
	if w.Code != 404 || w.Header().Get("Content-Type") != "application/json" || w.Body.String() != `{"statusCode":"404","message":"no schema"}` || w.Header().Get("Retry-After") != "" {
		t.Errorf("%d %v %s", w.Code, w.Header(), w.Body.String())
	}
	w = httptest.NewRecorder()
	Write(w, core.Answer{Status: 429, Response: []byte(`{}`), RetryAfter: 2})
	if w.Code != 429 || w.Header().Get("Retry-After") != "2" {
		t.Errorf("%d %v", w.Code, w.Header())
	}
}
