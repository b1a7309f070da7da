package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// infoLog is KrakenD's logger as the plugin sees it; it hands each Info line to the test.
type infoLog struct {
	noLogger
	lines chan string
}

func (l infoLog) Info(v ...interface{}) { l.lines <- fmt.Sprint(v...) }

func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

type reply struct {
	StatusCode string `json:"statusCode"`
	Message    string `json:"message"`
}

func post(t *testing.T, h http.Handler, path string) (int, reply) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "http://backend"+path, strings.NewReader(`{"a":1}`))
	h.ServeHTTP(w, r)
	var answer reply
	if err := json.Unmarshal(w.Body.Bytes(), &answer); err != nil {
		t.Errorf("%d %q: %v", w.Code, w.Body.Bytes(), err)
	}
	return w.Code, answer
}

func TestTheGatewaysShutdownClosesThePublisher(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	lines := make(chan string, 8)
	ClientRegisterer.RegisterLogger(infoLog{lines: lines})
	t.Cleanup(func() { log = noLogger{} })
	ctx, shutDown := context.WithCancel(context.Background())
	defer shutDown()
	h, err := newHandler(ctx, map[string]interface{}{pluginName: map[string]interface{}{
		"bootstrap_servers": closedPort(t), "registry_name": "r", "region": "eu-west-1",
		"glue_endpoint": "http://" + closedPort(t),
	}})
	if err != nil {
		t.Fatal(err)
	}
	// Answered by the open publisher, which refuses the topic's name.
	if status, r := post(t, h, "/v1/event/bad$topic"); status != 400 || !strings.Contains(r.Message, `"bad$topic"`) {
		t.Fatalf("open: %d %+v", status, r)
	}
	shutDown()
	// The plugin logs once Close returned: the event to wait for.
	for line := range lines {
		if strings.Contains(line, "publisher closed") {
			break
		}
	}
	status, r := post(t, h, "/v1/event/bad$topic")
	if status != 503 || r.Message != "krakend-kafka: the publisher is closed" {
		t.Errorf("after the shutdown: %d %+v", status, r)
	}
}
