// Command krakend-kafka is a KrakenD http-client plugin: a backend with
// `"plugin/http-client": {"name": "krakend-kafka", ...}` publishes each request to Kafka through the
// Rust core (linked in statically). This file only wires KrakenD to the core; the HTTP translation is
// in internal/bridge, and everything about schemas and Kafka is in the core.
package main

/*
#cgo CFLAGS: -I${SRCDIR}/../include
#cgo LDFLAGS: -lutil -lrt -lpthread -lm -ldl
#include <stdlib.h>
#include <string.h>
#include "krakend_kafka.h"

extern void krakendKafkaDone(uintptr_t context, char *response);
*/
import "C"

import (
	"context"
	"errors"
	"net/http"
	"runtime/cgo"
	"sync"
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
	go func() {
		<-ctx.Done() // KrakenD is shutting down: flush and release the producer.
		h.close()
	}()
	return h, nil
}

type handler struct {
	mu        sync.RWMutex // held shared while a request is handed to the core, exclusively by close
	publisher *C.kk_publisher
	settings  bridge.Settings
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	envelope, failure := bridge.BuildEnvelope(r, h.settings)
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
	// The core copies the envelope before it returns and answers through krakendKafkaDone: this goroutine
	// waits on a channel, not inside C, so it holds no Go scheduler slot while Kafka acknowledges.
	answer := make(chan []byte, 1)
	context := cgo.NewHandle(answer)
	C.kk_publish_async(h.publisher, (*C.uint8_t)(unsafe.Pointer(&envelope[0])), C.size_t(len(envelope)),
		C.kk_publish_done(C.krakendKafkaDone), C.uintptr_t(context))
	h.mu.RUnlock()
	bridge.Write(w, <-answer)
}

//export krakendKafkaDone
func krakendKafkaDone(context C.uintptr_t, response *C.char) {
	handle := cgo.Handle(context)
	handle.Value().(chan []byte) <- C.GoBytes(unsafe.Pointer(response), C.int(C.strlen(response)))
	handle.Delete()
	C.kk_string_free(response)
}

func (h *handler) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	C.kk_publisher_free(h.publisher)
	h.publisher = nil
}

// main is required of a plugin's package and never runs.
func main() {}
