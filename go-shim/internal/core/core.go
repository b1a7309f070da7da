// Package core is the Go side of the Rust core's C surface: it hands requests to the core and hands
// each answer back to the goroutine that waits for it. It holds the plugin's concurrency (the answer
// collector, the publisher handle's lifetime, shutdown) and no knowledge of HTTP, Kafka or answers:
// statuses and response bytes come from the core as they are.
package core

/*
#cgo CFLAGS: -I${SRCDIR}/../../../include
#cgo LDFLAGS: -lutil -lrt -lpthread -lm -ldl
#include "krakend_kafka.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/cgo"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// How reading a body ended (kk_message.body_read).
const (
	BodyComplete  = C.KK_BODY_COMPLETE
	BodyOverLimit = C.KK_BODY_OVER_LIMIT
	BodyBroken    = C.KK_BODY_BROKEN
)

// Message is what the core publishes from an HTTP request.
type Message struct {
	Path    string // the topic is its last segment unless the backend fixes one
	Key     string // Message-Key; empty: no key
	Headers string // the Message-Headers list, for the core to parse
	// The W3C trace context; empty: none (the core checks it)
	Traceparent string
	Tracestate  string
	// Idempotency-Key; empty: none
	IdempotencyKey string
	Body           []byte
	BodyRead       int           // BodyComplete, BodyOverLimit or BodyBroken
	Wait           time.Duration // how long the caller waits for the answer; 0: not known
}

// Publisher is one backend's publisher in the core and the queue its answers come back on.
type Publisher struct {
	mu     sync.RWMutex    // held shared while a request is handed to the core, exclusively by Close
	handle *C.kk_publisher // nil once closed: the core then answers 503 itself
	limit  int64           // the largest body the backend takes
	// The core queues every answer here; collect hands it to its request. The queue and collect live
	// as long as the process, so a request that arrives after Close still gets the core's answer.
	answers *C.kk_answers
	wake    *os.File // readable when answers arrive on an empty queue
}

// Answer is the core's answer to a request: the HTTP status, the response bytes, and when not 0 the
// seconds of its Retry-After.
type Answer struct {
	Status     int
	Response   []byte
	RetryAfter int
}

// Open opens a publisher with config (the plugin's JSON block). A config the core refuses returns its
// error AND a publisher that answers every request with a 500 naming it, so the gateway never falls
// back to its plain HTTP client. It returns no publisher only when the answer queue cannot be made.
func Open(config []byte) (*Publisher, error) {
	p := &Publisher{answers: C.kk_answers_new()}
	if p.answers == nil {
		return nil, errors.New("krakend-kafka: no file descriptor left for the answer queue")
	}
	// collect waits on a copy of the queue's eventfd through Go's poller, like on a socket.
	fd, err := syscall.Dup(int(C.kk_answers_fd(p.answers)))
	if err != nil {
		C.kk_answers_free(p.answers)
		return nil, fmt.Errorf("krakend-kafka: answer queue: %w", err)
	}
	p.wake = os.NewFile(uintptr(fd), "krakend-kafka answers")
	go p.collect()
	var refused error
	if msg := C.kk_publisher_new(span(unsafe.SliceData(config), len(config)), &p.handle); msg != nil {
		refused = errors.New(C.GoString(msg))
		C.kk_string_free(msg)
	}
	p.limit = int64(C.kk_publisher_body_limit(p.handle))
	return p, refused
}

// BodyLimit is the largest body the backend takes: read one byte more to tell that a body is over it.
func (p *Publisher) BodyLimit() int64 { return p.limit }

// Publish hands m to the core and waits for its answer. When ctx ends first, it returns the core's
// answer for an abandoned request, and the core logs the real outcome when it comes (it still comes
// here, to a channel nobody reads).
func (p *Publisher) Publish(ctx context.Context, m Message) Answer {
	answered := make(chan Answer, 1)
	context := cgo.NewHandle(answered)
	message := C.kk_message{
		path:            span(unsafe.StringData(m.Path), len(m.Path)),
		key:             span(unsafe.StringData(m.Key), len(m.Key)),
		headers:         span(unsafe.StringData(m.Headers), len(m.Headers)),
		traceparent:     span(unsafe.StringData(m.Traceparent), len(m.Traceparent)),
		tracestate:      span(unsafe.StringData(m.Tracestate), len(m.Tracestate)),
		idempotency_key: span(unsafe.StringData(m.IdempotencyKey), len(m.IdempotencyKey)),
		body:            span(unsafe.SliceData(m.Body), len(m.Body)),
		body_read:       C.kk_body_read(m.BodyRead),
		wait_ms:         C.uint64_t(m.Wait.Milliseconds()),
	}
	// The core reads the message during the call only and queues the answer: this goroutine waits on a
	// channel, not inside C, so it holds no Go scheduler slot while Kafka acknowledges.
	p.mu.RLock()
	C.kk_publish_message(p.handle, message, p.answers, C.uintptr_t(context))
	p.mu.RUnlock()
	select {
	case a := <-answered:
		return a
	case <-ctx.Done():
		var a C.kk_answer
		if !C.kk_answers_abandon(p.answers, C.uintptr_t(context), &a) {
			return <-answered // it came meanwhile and is on its way here
		}
		return answerOf(&a)
	}
}

// Close releases the publisher: the core first waits for the records in flight, whose answers are
// handed over as usual; requests from then on are answered 503 by the core.
func (p *Publisher) Close() {
	p.mu.Lock()
	handle := p.handle
	p.handle = nil
	p.mu.Unlock()
	// No call uses the old handle any more (each holds the lock throughout). It is freed outside the
	// lock: freeing flushes for up to the delivery budget, and a request meanwhile gets the core's 503 at
	// once instead of waiting in RLock, where its context cannot free it.
	C.kk_publisher_free(handle)
}

// collect hands the core's answers to their requests: it sleeps in Go's poller until the queue's
// eventfd turns readable, then drains the queue in batches with short calls into C.
func (p *Publisher) collect() {
	batch := make([]C.kk_answer, 256)
	wakeUps := make([]byte, 8)
	var timeout C.uint32_t // 0: the poller waits; the core's own wait is the fallback
	for {
		// A batch short of full emptied the queue: an answer after it signals the eventfd again.
		for n := len(batch); n == len(batch); {
			n = int(C.kk_answers_wait(p.answers, &batch[0], C.uintptr_t(len(batch)), timeout))
			for _, a := range batch[:n] {
				handle := cgo.Handle(a.context)
				handle.Value().(chan Answer) <- answerOf(&a)
				handle.Delete()
			}
		}
		// The descriptor never closes, so reading it does not fail; should it, waiting in C still works.
		if _, err := p.wake.Read(wakeUps); err != nil {
			timeout = 100
		}
	}
}

// answerOf copies the core's answer out of memory the core keeps only until its next call.
func answerOf(a *C.kk_answer) Answer {
	response := C.GoBytes(unsafe.Pointer(a.response.data), C.int(a.response.len))
	return Answer{Status: int(a.status), Response: response, RetryAfter: int(a.retry_after_s)}
}

func span(p *byte, n int) C.kk_bytes {
	return C.kk_bytes{data: (*C.uint8_t)(unsafe.Pointer(p)), len: C.uintptr_t(n)}
}
