// Command krakend is the KrakenD gateway this project builds and tests against: the lura framework
// (the engine of KrakenD CE, same configuration format) with its http-client plugin loader, so the
// krakend-kafka plugin is loaded exactly as KrakenD CE loads it. See the README for why it is built
// from lura rather than from the krakend-ce module.
//
//	krakend run -c krakend.json       serve the configuration
//	krakend check -c krakend.json     parse and validate it
//	krakend test-plugin -c plugin.so  load an http-client plugin and check it registers
//	krakend version
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/gin-gonic/gin"
	"github.com/luraproject/lura/v2/config"
	"github.com/luraproject/lura/v2/core"
	"github.com/luraproject/lura/v2/logging"
	"github.com/luraproject/lura/v2/proxy"
	krakendgin "github.com/luraproject/lura/v2/router/gin"
	"github.com/luraproject/lura/v2/transport/http/client"
	clientplugin "github.com/luraproject/lura/v2/transport/http/client/plugin"
	"github.com/luraproject/lura/v2/transport/http/server"
)

// The namespaces KrakenD CE accepts for these settings.
const (
	httpClientPlugin = "plugin/http-client"
	loggingNamespace = "telemetry/logging"
)

func main() {
	config.ExtraConfigAlias[httpClientPlugin] = clientplugin.Namespace
	if len(os.Args) < 2 {
		usage()
	}
	flags := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	path := flags.String("c", "", "configuration file (run, check) or plugin file (test-plugin)")
	debug := flags.Bool("d", false, "log at DEBUG level")
	_ = flags.Parse(os.Args[2:])
	switch os.Args[1] {
	case "run":
		os.Exit(run(*path, *debug))
	case "check":
		os.Exit(check(*path))
	case "test-plugin":
		os.Exit(testPlugin(*path))
	case "version":
		fmt.Printf("KrakenD gateway on lura %s\n", core.KrakendVersion)
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: krakend run|check -c krakend.json [-d] | test-plugin -c plugin.so | version")
	os.Exit(2)
}

func parse(path string) (config.ServiceConfig, error) {
	if path == "" {
		return config.ServiceConfig{}, fmt.Errorf("no configuration file: pass -c")
	}
	cfg, err := config.NewParser().Parse(path)
	if err != nil {
		return cfg, err
	}
	// Renames the namespaces CE accepts (plugin/http-client) to lura's own, as KrakenD CE does.
	cfg.Normalize()
	return cfg, refuseUnenforceable(cfg)
}

// ceOnly are security settings of KrakenD CE components this gateway does not contain. lura ignores
// namespaces it does not know, so serving such a config would silently drop the protection.
var ceOnly = []string{"auth/validator", "auth/signer", "auth/api-keys", "qos/ratelimit/router"}

func refuseUnenforceable(cfg config.ServiceConfig) error {
	for _, e := range cfg.Endpoints {
		for _, ns := range ceOnly {
			if _, ok := e.ExtraConfig[ns]; ok {
				return fmt.Errorf("endpoint %s: %s needs KrakenD CE; this gateway cannot enforce it, so it refuses the config", e.Endpoint, ns)
			}
		}
	}
	return nil
}

func check(path string) int {
	if _, err := parse(path); err != nil {
		fmt.Fprintln(os.Stderr, "ERROR parsing the configuration file:", err)
		return 1
	}
	fmt.Println("Syntax OK!")
	return 0
}

func testPlugin(path string) int {
	registered := 0
	count := func(name string, _ func(context.Context, map[string]interface{}) (http.Handler, error)) {
		registered++
	}
	n, err := clientplugin.Load(filepath.Dir(path), filepath.Base(path), count)
	if err != nil || n != 1 || registered == 0 {
		fmt.Printf("[KO] CLIENT\t%s: loaded %d, registered %d clients, error: %v\n", path, n, registered, err)
		return 1
	}
	fmt.Printf("[OK] CLIENT\t%s\n", path)
	return 0
}

func run(path string, debug bool) int {
	cfg, err := parse(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ERROR parsing the configuration file:", err)
		return 1
	}
	level := "INFO"
	if l, ok := cfg.ExtraConfig[loggingNamespace].(map[string]interface{})["level"].(string); ok {
		level = l
	}
	if debug {
		level = "DEBUG"
	}
	logger, err := logging.NewLogger(level, os.Stdout, "[KRAKEND]")
	if err != nil {
		fmt.Fprintln(os.Stderr, "ERROR:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// "static": an http-client that answers the seed's ok at once and publishes nothing, for measuring what
	// the gateway itself costs (the ceiling of `make bench`). Selected only by a config that names it.
	clientplugin.RegisterClient("static", func(context.Context, map[string]interface{}) (http.Handler, error) {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"statusCode":"200","message":"ok"}`))
		}), nil
	})
	if cfg.Plugin != nil {
		n, err := clientplugin.LoadWithLogger(cfg.Plugin.Folder, cfg.Plugin.Pattern, clientplugin.RegisterClient, logger)
		if err != nil {
			logger.Error("[SERVICE: Executor Plugin]", err.Error())
		}
		logger.Info("[SERVICE: Executor Plugin] Total plugins loaded:", n)
	}

	plain := func(*config.Backend) client.HTTPRequestExecutor {
		return client.DefaultHTTPRequestExecutor(client.NewHTTPClient)
	}
	executor := clientplugin.HTTPRequestExecutorWithContext(ctx, logger, plain)
	backends := func(b *config.Backend) proxy.Proxy {
		publisher, err := publisherBackend(ctx, b)
		if err != nil {
			logger.Error("[BACKEND]", err.Error())
			return func(context.Context, *proxy.Request) (*proxy.Response, error) { return nil, err }
		}
		if publisher != nil {
			return publisher
		}
		return proxy.NewHTTPProxyWithHTTPExecutor(b, executor(b), b.Decoder)
	}
	// The engine as KrakenD CE builds it: request log, recovery, path checks and /__health.
	engine := krakendgin.NewEngine(cfg, krakendgin.EngineOptions{Logger: logger, Writer: os.Stdout})
	krakendgin.NewFactory(krakendgin.Config{
		Engine:         engine,
		Middlewares:    []gin.HandlerFunc{},
		HandlerFactory: krakendgin.EndpointHandler,
		ProxyFactory:   proxy.NewDefaultFactory(backends, logger),
		Logger:         logger,
		RunServer:      server.RunServer,
	}).NewWithContext(ctx).Run(cfg)
	return 0
}
