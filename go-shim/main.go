// Command krakend-kafka is a KrakenD http-client plugin: a backend with
// `"plugin/http-client": {"name": "krakend-kafka", ...}` publishes each request to Kafka through the
// Rust core (linked in statically). This file only wires KrakenD to the core: internal/bridge reads the
// HTTP request and writes the answer, internal/core talks to the core; everything else is in the core.
package main

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/krakend-kafka/krakend-kafka/go-shim/internal/bridge"
	"github.com/krakend-kafka/krakend-kafka/go-shim/internal/core"
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
		log.Debug("[PLUGIN: krakend-kafka] logger registered")
	}
}

func (r registerer) RegisterClients(register func(
	name string,
	handler func(context.Context, map[string]interface{}) (http.Handler, error),
)) {
	register(string(r), newHandler)
}

// newHandler runs once per backend at start-up. The plugin's block goes to the core as it is; a config
// the core refuses is logged, and the core answers every request of the backend with a 500 naming it.
func newHandler(ctx context.Context, extra map[string]interface{}) (http.Handler, error) {
	config, err := json.Marshal(extra[pluginName])
	if err != nil {
		return nil, err
	}
	p, err := core.Open(config)
	if p == nil {
		return nil, err
	}
	if err != nil {
		log.Error("[PLUGIN: krakend-kafka]", err.Error())
	} else {
		log.Info("[PLUGIN: krakend-kafka] publisher ready")
	}
	go func() {
		<-ctx.Done() // KrakenD is shutting down: flush and release the producer.
		p.Close()
		log.Info("[PLUGIN: krakend-kafka] publisher closed")
	}()
	return handler{p}, nil
}

type handler struct{ p *core.Publisher }

func (h handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	bridge.Write(w, h.p.Publish(r.Context(), bridge.Read(r, h.p.BodyLimit())))
}

// main is required of a plugin's package and never runs.
func main() {}
