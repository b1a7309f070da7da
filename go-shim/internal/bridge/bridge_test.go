package bridge

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

func TestParseHeaderListKeepsWhatTheSeedLuaDropped(t *testing.T) {
	cases := map[string]map[string]string{
		"":                                    nil,
		"  ":                                  nil,
		"my_key=x-y_z":                        {"my_key": "x-y_z"},
		"a.b=1":                               {"a.b": "1"},
		"k=hello%2C%20world":                  {"k": "hello, world"},
		" spaced key = spaced value ,x=1":     {"spaced key": "spaced value", "x": "1"},
		"eq%3Dname=a%3Db,utf=%C3%A9t%C3%A9":   {"eq=name": "a=b", "utf": "été"},
		"empty=":                              {"empty": ""},
		"plus=a+b":                            {"plus": "a+b"},
		"trace-id=4bf92f3577b34da6,ver=1.2.3": {"trace-id": "4bf92f3577b34da6", "ver": "1.2.3"},
	}
	for in, want := range cases {
		got, err := ParseHeaderList(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseHeaderList(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

func TestParseHeaderListRefusesMalformedLists(t *testing.T) {
	cases := map[string]string{
		"novalue":  "item 1 (\"novalue\") is not name=value",
		"a=1,":     "item 2",
		"=v":       "item 1 has an empty name",
		"a=%zz":    "bad percent-encoding",
		"a=%ff":    "not UTF-8",
		"a=1,a=2":  "header a is given twice",
		"a=1,,b=2": "item 2",
	}
	for in, want := range cases {
		_, err := ParseHeaderList(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseHeaderList(%q) error = %v; want it to contain %q", in, err, want)
		}
	}
}

func request(path, body string, headers map[string]string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "http://backend"+path, strings.NewReader(body))
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	return r
}

func TestBuildEnvelopeEmbedsTheBodyAsRawJSON(t *testing.T) {
	body := `{"some_message":"a \"quoted\" </script> text","n":[1,2]}`
	r := request("/v1/event/MyTopic", body, map[string]string{
		"Message-Key":     "key \"1\"",
		"Message-Headers": "my_key=x-y_z, a.b=1",
	})
	out, f := BuildEnvelope(r, Settings{MaxBodyBytes: DefaultMaxBodyBytes})
	if f != nil {
		t.Fatal(f)
	}
	var env struct {
		TopicName string            `json:"topicName"`
		Body      json.RawMessage   `json:"body"`
		Headers   map[string]string `json:"headers"`
		Key       string            `json:"key"`
	}
	if err := json.Unmarshal(out, &env); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if env.TopicName != "MyTopic" || env.Key != `key "1"` {
		t.Errorf("topic %q key %q", env.TopicName, env.Key)
	}
	if !reflect.DeepEqual(env.Headers, map[string]string{"my_key": "x-y_z", "a.b": "1"}) {
		t.Errorf("headers %v", env.Headers)
	}
	var sent, got interface{}
	_ = json.Unmarshal([]byte(body), &sent)
	_ = json.Unmarshal(env.Body, &got)
	if !reflect.DeepEqual(sent, got) {
		t.Errorf("body %s != %s", env.Body, body)
	}
}

func TestBuildEnvelopeWithoutKeyOrHeadersLeavesThemOut(t *testing.T) {
	out, f := BuildEnvelope(request("/t/", `{"a":1}`, nil), Settings{MaxBodyBytes: 10})
	if f != nil || string(out) != `{"topicName":"t","body":{"a":1}}` {
		t.Fatalf("%s %v", out, f)
	}
	out, _ = BuildEnvelope(request("/ignored", `{"a":1}`, nil), Settings{Topic: "fixed", MaxBodyBytes: 10})
	if !strings.HasPrefix(string(out), `{"topicName":"fixed"`) {
		t.Fatalf("%s", out)
	}
}

func TestBuildEnvelopeRefusals(t *testing.T) {
	cases := []struct {
		body    string
		headers map[string]string
		limit   int64
		status  int
		message string
	}{
		{`{"a":1}`, map[string]string{"Message-Headers": "broken"}, 100, 400, "message-headers: item 1"},
		{`{"a":`, nil, 100, 400, "body: not valid JSON"},
		{``, nil, 100, 400, "body: not valid JSON"},
		{`{"a":"` + strings.Repeat("x", 100) + `"}`, nil, 100, 413, "body: larger than the limit of 100 bytes"},
	}
	for _, c := range cases {
		_, f := BuildEnvelope(request("/t", c.body, c.headers), Settings{MaxBodyBytes: c.limit})
		if f == nil || f.Status != c.status || !strings.Contains(f.Message, c.message) {
			t.Errorf("%q: %+v; want %d %q", c.body, f, c.status, c.message)
		}
	}
	// a body without Content-Length is held to the same limit while it is read
	r := request("/t", `{"a":"`+strings.Repeat("x", 100)+`"}`, nil)
	r.ContentLength = -1
	if _, f := BuildEnvelope(r, Settings{MaxBodyBytes: 100}); f == nil || f.Status != 413 {
		t.Errorf("chunked body: %+v", f)
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
	for body, status := range map[string]int{
		`{"statusCode":"200","message":"ok","partition":0,"offset":1}`: 200,
		`{"statusCode":"404","message":"no schema"}`:                   404,
		`{"statusCode":"504","message":"late"}`:                        504,
		`not json`:                                                     500,
		`{"statusCode":"abc"}`:                                         500,
	} {
		w := httptest.NewRecorder()
		Write(w, []byte(body))
		if w.Code != status || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %v", body, w.Code, w.Header())
		}
		if status != 500 && w.Body.String() != body {
			t.Errorf("%s: body %s", body, w.Body.String())
		}
	}
}
