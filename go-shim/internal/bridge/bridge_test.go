package bridge

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
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
	r := request("/v1/event/MyTopic", body, map[string]string{"Message-Key": `key "1"`})
	r.Header.Add("Message-Headers", "my_key=x-y_z")
	r.Header.Add("Message-Headers", "k=hello%2C%20world")
	p, f := Read(r, Settings{MaxBodyBytes: DefaultMaxBodyBytes})
	if f != nil {
		t.Fatal(f)
	}
	want := Parts{Topic: "MyTopic", Key: `key "1"`, HasKey: true, Headers: "my_key=x-y_z,k=hello%2C%20world", Body: []byte(body)}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("%+v\nwant %+v", p, want)
	}
}

func TestReadWithoutKeyOrHeadersAndWithAFixedTopic(t *testing.T) {
	p, f := Read(request("/t/", `{"a":1}`, map[string]string{"Message-Key": ""}), Settings{MaxBodyBytes: 10})
	if f != nil || p.Topic != "t" || p.HasKey || p.Headers != "" || string(p.Body) != `{"a":1}` {
		t.Fatalf("%+v %v", p, f)
	}
	p, _ = Read(request("/ignored", `{"a":1}`, nil), Settings{Topic: "fixed", MaxBodyBytes: 10})
	if p.Topic != "fixed" {
		t.Fatalf("%+v", p)
	}
}

func TestReadHoldsTheBodyToTheLimit(t *testing.T) {
	large := `{"a":"` + strings.Repeat("x", 100) + `"}`
	if _, f := Read(request("/t", large, nil), Settings{MaxBodyBytes: 100}); f == nil || f.Status != 413 ||
		f.Message != "body: larger than the limit of 100 bytes" {
		t.Errorf("%+v", f)
	}
	// a body without Content-Length is held to the same limit while it is read
	r := request("/t", large, nil)
	r.ContentLength = -1
	if _, f := Read(r, Settings{MaxBodyBytes: 100}); f == nil || f.Status != 413 {
		t.Errorf("chunked body: %+v", f)
	}
	for _, unknown := range []int64{-1, 0} {
		r = request("/t", `{"a":1}`, nil)
		r.ContentLength = unknown
		if p, f := Read(r, Settings{MaxBodyBytes: 100}); f != nil || string(p.Body) != `{"a":1}` {
			t.Errorf("body of unknown length (%d): %+v %v", unknown, p, f)
		}
	}
}

func TestSplitConfig(t *testing.T) {
	var block map[string]interface{}
	_ = json.Unmarshal([]byte(`{"topic":"t","max_body_bytes":2048,"registry_name":"r","kafka":{"linger.ms":"1"}}`), &block)
	s, core, err := SplitConfig(block)
	if err != nil || s.Topic != "t" || s.MaxBodyBytes != 2048 {
		t.Fatalf("%+v %v", s, err)
	}
	if string(core) != `{"kafka":{"linger.ms":"1"},"registry_name":"r"}` {
		t.Errorf("core config %s", core)
	}
	s, _, _ = SplitConfig(map[string]interface{}{})
	if s.MaxBodyBytes != DefaultMaxBodyBytes {
		t.Errorf("default limit %d", s.MaxBodyBytes)
	}
	for _, bad := range []string{`{"topic":5}`, `{"topic":""}`, `{"max_body_bytes":0}`, `{"max_body_bytes":"1"}`, `{"max_body_bytes":1.5}`} {
		_ = json.Unmarshal([]byte(bad), &block)
		if _, _, err := SplitConfig(block); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestWriteUsesTheCoreStatus(t *testing.T) {
	for _, c := range []struct {
		status, want int
		body         string
	}{
		{200, 200, `{"statusCode":"200","message":"ok","partition":0,"offset":1}`},
		{404, 404, `{"statusCode":"404","message":"no schema"}`},
		{504, 504, `{"statusCode":"504","message":"late"}`},
		{0, 500, `{"statusCode":"0"}`},
		{600, 500, `{"statusCode":"600"}`},
	} {
		w := httptest.NewRecorder()
		Write(w, c.status, []byte(c.body))
		if w.Code != c.want || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%d: %d %v", c.status, w.Code, w.Header())
		}
		if c.want == c.status && w.Body.String() != c.body {
			t.Errorf("%d: body %s", c.status, w.Body.String())
		}
	}
}

func TestWriteFailureHasTheCoreShape(t *testing.T) {
	w := httptest.NewRecorder()
	WriteFailure(w, &Failure{Status: 413, Message: `body: "too" large`})
	if w.Code != 413 || w.Body.String() != `{"statusCode":"413","message":"body: \"too\" large"}` {
		t.Errorf("%d %s", w.Code, w.Body.String())
	}
}
