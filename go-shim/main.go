// Command krakend-kafka is a KrakenD http-client plugin: a backend with
// `"plugin/http-client": {"name": "krakend-kafka", ...}` publishes each request to Kafka through the
// Rust core (linked in statically). This file only wires KrakenD to the core; the HTTP translation is
// in internal/bridge, and everything about schemas and Kafka is in the core.
package main

/*
#cgo CFLAGS: -I${SRCDIR}/../include
#cgo LDFLAGS: -lutil -lrt -lpthread -lm -ldl
#include "krakend_kafka.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime/cgo"
	"sync"
	"syscall"
	"unsafe"

	"github.com/krakend-kafka/krakend-kafka/go-shim/internal/bridge"
)

// pluginName is the `name` a backend's plugin/http-client block selects, and the key of its settings.
const pluginName = "krakend-kafka"

// ClientRegisterer is the symbol KrakenD looks up in the plugin.
var ClientRegisterer = registerer(pluginName)

type registerer string

// logger is the part of KrakenD's logger the plugin uses.
type logger interface {
	Debug(v ...interface{})
	Info(v ...interface{})
	Error(v ...interface{})
}

type noLogger struct{}

func (noLogger) Debug(...interface{}) {}
func (noLogger) Info(...interface{})  {}
func (noLogger) Error(...interface{}) {}

var log logger = noLogger{}

func (registerer) RegisterLogger(v interface{}) {
	if l, ok := v.(logger); ok {
		log = l
		log.Debug("[PLUGIN: krakend-kafka] logger registered, core", C.GoString(C.kk_version()))
	}
}

func (r registerer) RegisterClients(register func(
	name string,
	handler func(context.Context, map[string]interface{}) (http.Handler, error),
)) {
	register(string(r), newHandler)
}

// newHandler runs once per backend at start-up. A bad config must not let KrakenD fall back to its
// plain HTTP client silently, so it is logged as an error and every request answers it as a 500.
func newHandler(ctx context.Context, extra map[string]interface{}) (http.Handler, error) {
	h, err := open(ctx, extra)
	if err != nil {
		log.Error("[PLUGIN: krakend-kafka]", err.Error())
		failure := &bridge.Failure{Status: http.StatusInternalServerError, Message: "krakend-kafka is misconfigured: " + err.Error()}
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { bridge.WriteFailure(w, failure) }), nil
	}
	log.Info("[PLUGIN: krakend-kafka] publisher ready")
	return h, nil
}

func open(ctx context.Context, extra map[string]interface{}) (*handler, error) {
	block, ok := extra[pluginName].(map[string]interface{})
	if !ok && extra[pluginName] != nil {
		return nil, errors.New("config key " + pluginName + ": must be an object")
	}
	settings, core, err := bridge.SplitConfig(block)
	if err != nil {
		return nil, err
	}
	var p *C.kk_publisher
	if msg := C.kk_publisher_new((*C.uint8_t)(unsafe.Pointer(&core[0])), C.size_t(len(core)), &p); msg != nil {
		defer C.kk_string_free(msg)
		return nil, errors.New(C.GoString(msg))
	}
	h := &handler{publisher: p, settings: settings}
	if h.answers = C.kk_answers_new(); h.answers == nil {
		C.kk_publisher_free(p)
		return nil, errors.New("krakend-kafka: no file descriptor left for the answer queue")
	}
	// The collector waits on a copy of the queue's eventfd through Go's poller, like on a socket.
	fd, err := syscall.Dup(int(C.kk_answers_fd(h.answers)))
	if err != nil {
		C.kk_answers_free(h.answers)
		C.kk_publisher_free(p)
		return nil, fmt.Errorf("krakend-kafka: answer queue: %w", err)
	}
	h.wake = os.NewFile(uintptr(fd), "krakend-kafka answers")
	go h.collect()
	go func() {
		<-ctx.Done() // KrakenD is shutting down: flush and release the producer.
		h.close()
	}()
	return h, nil
}

type handler struct {
	mu        sync.RWMutex // held shared while a request is handed to the core, exclusively by close
	publisher *C.kk_publisher
	answers   *C.kk_answers // the core queues each request's answer here; collect hands it over
	wake      *os.File      // readable when answers arrive on an empty queue
	settings  bridge.Settings
}

// answer is what collect hands the waiting request.
type answer struct {
	status   int
	response []byte
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, failure := bridge.Read(r, h.settings)
	if failure != nil {
		bridge.WriteFailure(w, failure)
		return
	}
	h.mu.RLock()
	if h.publisher == nil {
		h.mu.RUnlock()
		bridge.WriteFailure(w, &bridge.Failure{Status: http.StatusServiceUnavailable, Message: "krakend-kafka: shutting down"})
		return
	}
	// The core reads the parts during the call only and queues the answer: this goroutine waits on a
	// channel, not inside C, so it holds no Go scheduler slot while Kafka acknowledges.
	answered := make(chan answer, 1)
	context := cgo.NewHandle(answered)
	var key *C.uint8_t
	if p.HasKey {
		key = bytesOf(unsafe.StringData(p.Key))
	}
	C.kk_publish_message(h.publisher,
		bytesOf(unsafe.StringData(p.Topic)), C.size_t(len(p.Topic)),
		key, C.size_t(len(p.Key)),
		bytesOf(unsafe.StringData(p.Headers)), C.size_t(len(p.Headers)),
		bytesOf(unsafe.SliceData(p.Body)), C.size_t(len(p.Body)),
		h.answers, C.uintptr_t(context))
	h.mu.RUnlock()
	select {
	case a := <-answered:
		bridge.Write(w, a.status, a.response)
	case <-r.Context().Done(): // KrakenD gave up on the request; the late answer lands in the buffer
		bridge.WriteFailure(w, &bridge.Failure{Status: http.StatusGatewayTimeout, Message: "krakend-kafka: " + r.Context().Err().Error()})
	}
}

func bytesOf(p *byte) *C.uint8_t { return (*C.uint8_t)(unsafe.Pointer(p)) }

// collect hands the core's answers to their requests: it sleeps in Go's poller until the queue's
// eventfd turns readable, then drains the queue in batches with short calls into C. It ends when close
// closes the eventfd, after the last answers are handed over.
func (h *handler) collect() {
	batch := make([]C.kk_answer, 256)
	drain := func() {
		for n := 1; n > 0; {
			n = int(C.kk_answers_wait(h.answers, &batch[0], C.size_t(len(batch)), 0))
			for _, a := range batch[:n] {
				handle := cgo.Handle(a.context)
				handle.Value().(chan answer) <- answer{int(a.status), C.GoBytes(unsafe.Pointer(a.response), C.int(a.response_len))}
				handle.Delete()
			}
		}
	}
	wakeUps := make([]byte, 8)
	for {
		drain()
		if _, err := h.wake.Read(wakeUps); err != nil { // closed, after the flush queued the last answers
			drain()
			C.kk_answers_free(h.answers)
			return
		}
	}
}

func (h *handler) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	C.kk_publisher_free(h.publisher) // flushes: the answers of records in flight are queued first
	h.publisher = nil
	// Ends collect; answers queued from here on are not waited for.
	_ = h.wake.Close()
}

// main is required of a plugin's package and never runs.
func main() {}
