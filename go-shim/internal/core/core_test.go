package core

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
)

// These tests run the real core (linked in by `make go-test`). Most need no broker: what they publish is
// answered by the core's validation, by an unreachable registry, or by a registry that never answers.
// Close's tests need records in flight, so a schema and a broker: they run on the test services that
// `make go-test` starts (a Kafka broker, and moto for Glue, where `services.sh example` registered the
// schema of topic example-events).

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

// The topic and registry `services.sh example` makes, and a record of its schema.
const (
	exampleTopic  = "/v1/event/example-events"
	exampleRecord = `{"some_message":"hello"}`
	refused       = `{"some_message":1}` // not of the schema: 400, within the call once the schema is at hand
)

func service(t *testing.T, name string) string {
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: this test runs on the test services (make go-test starts them)", name)
	}
	return v
}

// heldBroker is the test services' broker behind a proxy that holds every Produce request until
// release: the records reach the producer and stay in flight, and the test learns when each is sent.
type heldBroker struct {
	address  string
	produced chan struct{} // one per Produce request held
	released chan struct{}
	release  func()
}

// The broker advertises its FAULTY listener at KK_FAULTY_BOOTSTRAP: a producer that bootstraps there
// reaches the broker only through the proxy listening on it.
func holdBroker(t *testing.T) *heldBroker {
	l, err := net.Listen("tcp", service(t, "KK_FAULTY_BOOTSTRAP"))
	if err != nil {
		t.Fatal(err)
	}
	target := service(t, "KK_FAULTY_BROKER")
	released := make(chan struct{})
	b := &heldBroker{address: l.Addr().String(), produced: make(chan struct{}, 64), released: released,
		release: sync.OnceFunc(func() { close(released) })}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		b.release()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			client, err := l.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, client, server)
			mu.Unlock()
			go io.Copy(client, server)
			go b.forward(client, server)
		}
	}()
	return b
}

// forward passes the client's requests to the server in order, holding each Produce request (and what
// follows it) until released; it reads on meanwhile, to tell each Produce request as it comes.
func (b *heldBroker) forward(client, server net.Conn) {
	const produce = 0 // Kafka's api key of a Produce request
	requests := make(chan []byte, 64)
	go func() {
		defer close(requests)
		for {
			// A request is its size (4 bytes, big-endian), then its api key (2 bytes) and the rest.
			var size [4]byte
			if _, err := io.ReadFull(client, size[:]); err != nil {
				return
			}
			request := make([]byte, 4+binary.BigEndian.Uint32(size[:]))
			copy(request, size[:])
			if _, err := io.ReadFull(client, request[4:]); err != nil {
				return
			}
			if binary.BigEndian.Uint16(request[4:]) == produce {
				b.produced <- struct{}{}
			}
			requests <- request
		}
	}()
	for request := range requests {
		if binary.BigEndian.Uint16(request[4:]) == produce {
			<-b.released
		}
		if _, err := server.Write(request); err != nil {
			return
		}
	}
}

// openExample opens a publisher of topic example-events on the test services, its broker at bootstrap.
// librdkafka gives up on a record held in flight only after message.timeout.ms, derived from timeout_ms
// (18.5 s), long past any hold of these tests.
func openExample(t *testing.T, bootstrap string) *Publisher {
	config := fmt.Sprintf(`{"bootstrap_servers":%q,"registry_name":"krakend-kafka","glue_endpoint":%q,
		"timeout_ms":20000}`, bootstrap, service(t, "KK_GLUE_ENDPOINT"))
	p, err := Open([]byte(config))
	if err != nil {
		t.Fatal(err)
	}
	return p
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
	broker := holdBroker(t)
	p := openExample(t, broker.address)
	// Cancelled as Close returns: a record whose answer had not come by then gets the 504 of an abandoned
	// request instead of its outcome.
	waiting, stopWaiting := context.WithCancel(context.Background())
	const inFlight = 3
	answers := make(chan Answer, inFlight)
	for i := range inFlight {
		m := Message{Path: exampleTopic, Key: fmt.Sprint(i), Body: []byte(exampleRecord)}
		go func() { answers <- p.Publish(waiting, m) }()
		<-broker.produced // each in a Produce request of its own: the one before is held
	}
	closed := make(chan struct{})
	go func() {
		p.Close()
		stopWaiting()
		close(closed)
	}()
	// Requests while Close runs: until it took the handle the core refuses these bodies itself, then 503.
	var during sync.WaitGroup
	for range 16 {
		during.Add(1)
		go func() {
			defer during.Done()
			for {
				status, r := publish(t, context.Background(), p, Message{Path: exampleTopic, Body: []byte(refused)})
				if status == 503 && r.Message == "krakend-kafka: the publisher is closed" {
					return
				}
				if status != 400 {
					t.Errorf("during Close: %d %+v", status, r)
					return
				}
			}
		}()
	}
	during.Wait()
	broker.release() // Close's flush waits for the records in flight: they can be stored now
	<-closed
	for range inFlight {
		if a := <-answers; a.Status != 200 || !strings.Contains(string(a.Response), `"message":"ok"`) {
			// 504 "the caller stopped waiting": answered only after Close returned
			t.Errorf("a record in flight when Close began: %d %s", a.Status, a.Response)
		}
	}
	status, r := publish(t, context.Background(), p, Message{Path: exampleTopic, Body: []byte(exampleRecord)})
	if status != 503 || r.Message != "krakend-kafka: the publisher is closed" {
		t.Errorf("after Close: %d %+v", status, r)
	}
}

func TestARequestDuringCloseIsAnswered503WhileTheFlushStillWaits(t *testing.T) {
	broker := holdBroker(t)
	p := openExample(t, broker.address)
	inFlight := make(chan Answer, 1)
	go func() {
		inFlight <- p.Publish(context.Background(), Message{Path: exampleTopic, Body: []byte(exampleRecord)})
	}()
	<-broker.produced // the broker does not answer: Close's flush waits for this record
	closed := make(chan struct{})
	go func() {
		p.Close()
		close(closed)
	}()
	// Until Close took the handle, the core refuses this body itself.
	for {
		status, r := publish(t, context.Background(), p, Message{Path: exampleTopic, Body: []byte(refused)})
		if status == 503 && r.Message == "krakend-kafka: the publisher is closed" {
			break
		}
		if status != 400 {
			t.Fatalf("during Close: %d %+v", status, r)
		}
	}
	select {
	case <-closed:
		t.Fatal("the request during Close was answered only once Close returned")
	default:
	}
	broker.release()
	<-closed
	if a := <-inFlight; a.Status != 200 {
		t.Errorf("the record in flight: %d %s", a.Status, a.Response)
	}
}

func TestACallerWhoStopsWaitingGets504AndTheLateAnswerIsCollected(t *testing.T) {
	// A registry that accepts connections and never answers: the core answers only after timeout_ms.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	asked := make(chan struct{}, 1)
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			select {
			case asked <- struct{}{}:
			default:
			}
		}
	}()
	p := open(t, silent.Addr().String())
	defer p.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The caller stops waiting once the core asks the registry for the schema: its answer is yet to come.
	go func() {
		<-asked
		cancel()
	}()
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

func TestAnswersStillReachTheirRequestsWhenTheWakeUpsCannotBeRead(t *testing.T) {
	p := open(t, closedPort(t))
	defer p.Close()
	// collect's reads fail from now on (one under way returns at once): it waits in the core instead.
	// Without that fallback no answer reaches its request, and the test hangs until go test's -timeout.
	if err := p.wake.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		// answered within the call
		if status, r := publish(t, context.Background(), p, Message{Path: "/t", Body: []byte(`[]`)}); status != 400 {
			t.Errorf("%d %+v", status, r)
		}
		// answered later, on the core's runtime, once the registry could not be reached
		status, r := publish(t, context.Background(), p, Message{Path: fmt.Sprintf("/t%d", i), Body: []byte(`{"a":1}`)})
		if status != 503 || !strings.Contains(r.Message, "not stored: the schema registry") {
			t.Errorf("%d %+v", status, r)
		}
	}
}
