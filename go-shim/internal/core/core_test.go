package core

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests run the real core (linked in by `make go-test`) with no broker: what they publish is
// answered by the core's validation, by an unreachable registry, or by a registry that never answers.

func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func open(t *testing.T, glue string) *Publisher {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	config := fmt.Sprintf(`{"bootstrap_servers":%q,"registry_name":"r","region":"eu-west-1","glue_endpoint":"http://%s",
		"timeout_ms":2000,"max_body_bytes":64}`, closedPort(t), glue)
	p, err := Open([]byte(config))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type reply struct {
	StatusCode string `json:"statusCode"`
	Message    string `json:"message"`
}

func publish(t *testing.T, ctx context.Context, p *Publisher, m Message) (int, reply) {
	a := p.Publish(ctx, m)
	status, response := a.Status, a.Response
	var r reply
	if err := json.Unmarshal(response, &r); err != nil {
		t.Errorf("%d %q: %v", status, response, err)
	}
	if r.StatusCode != fmt.Sprint(status) {
		t.Errorf("status %d, statusCode %q", status, r.StatusCode)
	}
	return status, r
}

func TestEachConcurrentRequestGetsItsOwnAnswer(t *testing.T) {
	p := open(t, closedPort(t))
	defer p.Close()
	if p.BodyLimit() != 64 {
		t.Fatalf("body limit %d", p.BodyLimit())
	}
	// More callers than the collector takes answers per batch: a full batch is followed by another.
	var wg sync.WaitGroup
	for i := 0; i < 1024; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 4; j++ {
				topic := fmt.Sprintf("bad$%d-%d", i, j)
				status, r := publish(t, context.Background(), p, Message{Path: "/v1/" + topic, Body: []byte(`{"a":1}`)})
				if status != 400 || !strings.Contains(r.Message, fmt.Sprintf("%q", topic)) {
					t.Errorf("%s: %d %+v", topic, status, r)
				}
			}
		}(i)
	}
	wg.Wait()
}

func TestAnswersComeFromTheCoreWhetherSyncOrAsync(t *testing.T) {
	p := open(t, closedPort(t))
	defer p.Close()
	for _, c := range []struct {
		m      Message
		status int
		says   string
	}{
		{Message{Path: "/t", Headers: "a=1,a=2", Body: []byte(`{"a":1}`)}, 400, "headers: a is given twice"},
		{Message{Path: "/t", BodyRead: BodyOverLimit}, 413, "larger than the limit of 64 bytes"},
		{Message{Path: "/t", Body: []byte(`{"a"`), BodyRead: BodyBroken}, 400, "the connection ended"},
		// a legal request needs the schema: the registry's port is closed, answered on the core's runtime
		// (the AWS client's retries after "connection refused" may outlast timeout_ms: either is a 503)
		{Message{Path: "/t", Key: "k", Body: []byte(`{"a":1}`)}, 503, "not stored: the schema registry is unavailable (it cannot be reached)|not stored: the schema registry did not answer"},
	} {
		status, r := publish(t, context.Background(), p, c.m)
		says := strings.Split(c.says, "|")
		if status != c.status || !slices.ContainsFunc(says, func(s string) bool { return strings.Contains(r.Message, s) }) {
			t.Errorf("%+v: %d %+v, want %d %q", c.m, status, r, c.status, c.says)
		}
	}
}

func TestARefusedConfigAnswers500NamingTheKey(t *testing.T) {
	p, err := Open([]byte(`{"bootstrap_servers":"127.0.0.1:1","registry_name":"r","max_body_bytes":"big"}`))
	if p == nil || err == nil || !strings.Contains(err.Error(), "max_body_bytes") {
		t.Fatalf("%v %v", p, err)
	}
	defer p.Close()
	status, r := publish(t, context.Background(), p, Message{Path: "/t", Body: []byte(`{"a":1}`)})
	if status != 500 || r.Message != "krakend-kafka is misconfigured: "+err.Error() || p.BodyLimit() != 0 {
		t.Errorf("%d %+v", status, r)
	}
}

func TestRequestsDuringAndAfterCloseAreAnswered(t *testing.T) {
	p := open(t, closedPort(t))
	var wg sync.WaitGroup
	statuses := make(chan int, 16*50)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				status, _ := publish(t, context.Background(), p, Message{Path: "/t", Body: []byte(`{}`)})
				statuses <- status
			}
		}()
	}
	p.Close()
	wg.Wait()
	close(statuses)
	seen := map[int]int{}
	for s := range statuses {
		seen[s]++
	}
	if seen[400]+seen[503] != 16*50 {
		t.Errorf("answers by status: %v", seen)
	}
	status, r := publish(t, context.Background(), p, Message{Path: "/t", Body: []byte(`{"a":1}`)})
	if status != 503 || r.Message != "krakend-kafka: the publisher is closed" {
		t.Errorf("after Close: %d %+v", status, r)
	}
}

func TestACallerWhoStopsWaitingGets504AndTheLateAnswerIsCollected(t *testing.T) {
	// A registry that accepts connections and never answers: the core answers only after timeout_ms.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	p := open(t, silent.Addr().String())
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	status, r := publish(t, ctx, p, Message{Path: "/waiting", Body: []byte(`{"a":1}`)})
	if status != 504 || !strings.Contains(r.Message, "may still be stored") {
		t.Errorf("%d %+v", status, r)
	}
	// The first request's late answer lands in its buffer; a request for the same topic waits for the
	// same schema fetch and is answered when it gives up: nothing was sent.
	status, r = publish(t, context.Background(), p, Message{Path: "/waiting", Body: []byte(`{"a":1}`)})
	if status != 503 || !strings.Contains(r.Message, "not stored: the schema registry did not answer within 2000 ms") {
		t.Errorf("%d %+v", status, r)
	}
}

func TestACallerWhoStopsWaitingAfterItsAnswerCameGetsThatAnswer(t *testing.T) {
	p := open(t, closedPort(t))
	defer p.Close()
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	// Bad input is answered within the call: the answer is there before the caller could give up.
	for i := 0; i < 200; i++ {
		if status, r := publish(t, gone, p, Message{Path: "/t", Body: []byte(`[]`)}); status != 400 {
			t.Fatalf("request %d: %d %+v", i, status, r)
		}
	}
}
