// Command krakend-rig is the test rig's gateway: the product's gateway (package gateway, the same
// setup as build/krakend) plus what only `make bench` and the fault suite need, so that every HTTP
// scenario runs in one binary and their figures compare:
//
//   - "static", an http-client that answers the seed's ok at once and publishes nothing: what the gateway
//     itself costs (the ceiling);
//   - backend/pubsub/publisher, KrakenD CE's own Kafka publisher rebuilt on its library (pubsub.go): the
//     same-binary peer the plugin is compared with;
//   - with KK_RIG_PPROF=host:port, Go's profiles on that address: the fault suite counts the gateway's
//     goroutines there to find a leak per request.
//
// It is never shipped: the container image holds build/krakend, built from krakend/gateway/cmd/krakend.
package main

import (
	"context"
	"net/http"
	_ "net/http/pprof" // on http.DefaultServeMux, served only with KK_RIG_PPROF
	"os"

	"github.com/krakend-kafka/krakend-kafka/krakend/gateway"
	"github.com/luraproject/lura/v2/config"
	"github.com/luraproject/lura/v2/logging"
	"github.com/luraproject/lura/v2/proxy"
	clientplugin "github.com/luraproject/lura/v2/transport/http/client/plugin"
)

func main() {
	if addr := os.Getenv("KK_RIG_PPROF"); addr != "" {
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
	// Registered before the config's plugins load; selected only by a config that names it.
	clientplugin.RegisterClient("static", func(context.Context, map[string]interface{}) (http.Handler, error) {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"statusCode":"200","message":"ok"}`))
		}), nil
	})
	os.Exit(gateway.Main(os.Args, gateway.Extension{
		Namespaces: gateway.Namespaces{Backend: []string{pubsubPublisher}},
		Backends:   publishers,
	}))
}

// publishers puts the pubsub publisher in front of the gateway's backends, for the backends that ask for it.
func publishers(ctx context.Context, logger logging.Logger, next proxy.BackendFactory) proxy.BackendFactory {
	return func(b *config.Backend) proxy.Proxy {
		publisher, err := publisherBackend(ctx, b)
		if err != nil {
			logger.Error("[BACKEND]", err.Error())
			return func(context.Context, *proxy.Request) (*proxy.Response, error) { return nil, err }
		}
		if publisher != nil {
			return publisher
		}
		return next(b)
	}
}
