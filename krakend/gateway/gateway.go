// Package gateway is the KrakenD gateway this project ships and tests against: the lura framework (the
// engine of KrakenD CE, same configuration format) with the KrakenD CE modules the Go module proxy
// serves, composed in the order KrakenD CE v2.13 composes them:
//
//   - krakend-gologging: CE's logger (telemetry/logging)
//   - krakend-jose: JWT validation and signing on endpoints (auth/validator, auth/signer), with the
//     shared JWK cache of the service level
//   - krakend-jsonschema: request-body validation on endpoints (validation/json-schema)
//   - lura's http-client plugin loader (plugin/http-client), so plugins load exactly as in KrakenD CE
//
// KrakenD CE's other modules cannot be fetched here; lura ignores settings it does not know, which would
// serve an endpoint with less than its config asks (no rate limit, no CORS...), so the gateway refuses
// every extra_config namespace it does not implement (see namespaces.go).
//
// cmd/krakend is the product binary; a test rig adds what only tests need through an Extension.
package gateway

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
	gologging "github.com/krakend/krakend-gologging/v2"
	jose "github.com/krakend/krakend-jose/v2"
	ginjose "github.com/krakend/krakend-jose/v2/gin"
	jsonschema "github.com/krakend/krakend-jsonschema/v2"
	"github.com/luraproject/lura/v2/config"
	"github.com/luraproject/lura/v2/core"
	"github.com/luraproject/lura/v2/logging"
	"github.com/luraproject/lura/v2/proxy"
	krakendgin "github.com/luraproject/lura/v2/router/gin"
	"github.com/luraproject/lura/v2/sd/dnssrv"
	"github.com/luraproject/lura/v2/transport/http/client"
	clientplugin "github.com/luraproject/lura/v2/transport/http/client/plugin"
	"github.com/luraproject/lura/v2/transport/http/server"
)

// Extension is what a test rig adds to the gateway. The product binary has none.
type Extension struct {
	// Namespaces the extension implements, besides the gateway's own.
	Namespaces Namespaces
	// Backends, when set, wraps the gateway's backend factory.
	Backends func(ctx context.Context, logger logging.Logger, next proxy.BackendFactory) proxy.BackendFactory
}

// Main runs the command of args (os.Args) and returns the process's exit code.
func Main(args []string, ext Extension) int {
	if len(args) < 2 {
		return usage()
	}
	flags := flag.NewFlagSet(args[1], flag.ContinueOnError)
	path := flags.String("c", "", "configuration file (run, check) or plugin file (test-plugin)")
	debug := flags.Bool("d", false, "run: enable the /__debug/ endpoint, as KrakenD CE's -d does")
	port := flags.Int("p", 0, "run: listen on this port instead of the config's")
	if err := flags.Parse(args[2:]); err != nil {
		return usage()
	}
	setAliases()
	switch args[1] {
	case "run":
		return run(*path, *debug, *port, ext)
	case "check":
		return check(*path, ext)
	case "test-plugin":
		return testPlugin(*path)
	case "version":
		// KrakenD CE's lines, which tools (and plugin-check) read: the Go release and the glibc of the build.
		fmt.Printf("KrakenD Version: %s (lura, with krakend-jose, krakend-gologging, krakend-jsonschema)\nGo Version: %s\nGlibc Version: %s\n",
			core.KrakendVersion, core.GoVersion, core.GlibcVersion)
		return 0
	default:
		return usage()
	}
}

func usage() int {
	fmt.Fprintln(os.Stderr, "usage: krakend run -c krakend.json [-d] [-p port] | check -c krakend.json | test-plugin -c plugin.so | version")
	return 2
}

// parse reads the config as KrakenD CE does (the short namespaces renamed to the modules' own), then
// refuses what the gateway would not enforce.
func parse(path string, ext Extension) (config.ServiceConfig, error) {
	if path == "" {
		return config.ServiceConfig{}, fmt.Errorf("no configuration file: pass -c")
	}
	cfg, err := config.NewParser().Parse(path)
	if err != nil {
		return cfg, err
	}
	cfg.Normalize()
	if err := refuseUnimplemented(cfg, ext.Namespaces); err != nil {
		return cfg, err
	}
	return cfg, checkModules(cfg)
}

func check(path string, ext Extension) int {
	if _, err := parse(path, ext); err != nil {
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

// newLogger is KrakenD CE's logger: krakend-gologging as telemetry/logging configures it (it writes to
// stdout only with "stdout": true), else lura's at DEBUG on stdout.
func newLogger(cfg config.ServiceConfig) logging.Logger {
	logger, err := gologging.NewLogger(cfg.ExtraConfig)
	if err == nil {
		logger.Debug("[SERVICE: telemetry/logging] Improved logging started.")
		return logger
	}
	fallback, _ := logging.NewLogger("DEBUG", os.Stdout, "KRAKEND")
	if err != gologging.ErrWrongConfig {
		fallback.Error("[SERVICE: Logging] Unable to create the logger:", err.Error())
	}
	return fallback
}

func run(path string, debug bool, port int, ext Extension) int {
	cfg, err := parse(path, ext)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ERROR parsing the configuration file:", err)
		return 1
	}
	if debug {
		cfg.Debug = true
	}
	if port != 0 {
		cfg.Port = port
	}
	logger := newLogger(cfg)
	logger.Info(fmt.Sprintf("Starting KrakenD (lura %s)", core.KrakendVersion))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	dnssrv.Register()
	dnssrv.SetTTL(cfg.DNSCacheTTL)
	if cfg.Plugin != nil {
		n, err := clientplugin.LoadWithLogger(cfg.Plugin.Folder, cfg.Plugin.Pattern, clientplugin.RegisterClient, logger)
		if err != nil {
			logger.Error("[SERVICE: Executor Plugin]", err.Error())
		}
		logger.Info("[SERVICE: Executor Plugin] Total plugins loaded:", n)
	}
	// The JWK cache shared by every validator, when the service level asks for it.
	if err := jose.SetGlobalCacher(logger, cfg.ExtraConfig); err != nil && err != jose.ErrNoValidatorCfg {
		logger.Error("[SERVICE: JOSE]", err.Error())
	}

	// Backends: lura's HTTP proxy over the plugin executor (plugins selected by plugin/http-client, else
	// lura's HTTP client).
	plain := func(*config.Backend) client.HTTPRequestExecutor {
		return client.DefaultHTTPRequestExecutor(client.NewHTTPClient)
	}
	executor := clientplugin.HTTPRequestExecutorWithContext(ctx, logger, plain)
	var backends proxy.BackendFactory = func(b *config.Backend) proxy.Proxy {
		return proxy.NewHTTPProxyWithHTTPExecutor(b, executor(b), b.Decoder)
	}
	if ext.Backends != nil {
		backends = ext.Backends(ctx, logger, backends)
	}
	// Endpoints: lura's pipe (merging, static, flatmap), shadow backends, then the body's JSON Schema.
	var pipes proxy.Factory = proxy.NewDefaultFactory(backends, logger)
	pipes = proxy.NewShadowFactory(pipes)
	pipes = jsonschema.ProxyFactory(logger, pipes)
	// Handlers: lura's, behind JWT validation (and signing) as krakend-jose wraps it.
	handlers := krakendgin.CustomErrorEndpointHandler(logger, server.DefaultToHTTPError)
	handlers = ginjose.HandlerFactory(handlers, logger, nil)

	// The engine: access log, recovery, path checks, /__health, the router namespace's options.
	engine := krakendgin.NewEngine(cfg, krakendgin.EngineOptions{Logger: logger, Writer: os.Stdout})
	setErrorBodies(engine, cfg)
	logger.Info("Starting the KrakenD instance")
	krakendgin.NewFactory(krakendgin.Config{
		Engine:         engine,
		Middlewares:    []gin.HandlerFunc{},
		HandlerFactory: handlers,
		ProxyFactory:   pipes,
		Logger:         logger,
		RunServer:      server.RunServerWithLoggerFactory(logger),
	}).NewWithContext(ctx).Run(cfg)
	return 0
}

// setErrorBodies answers unknown routes and methods with the JSON bodies of the router namespace's
// error_body (a KrakenD CE setting), when it has them.
func setErrorBodies(engine *gin.Engine, cfg config.ServiceConfig) {
	opts, _ := cfg.ExtraConfig[krakendgin.Namespace].(map[string]interface{})
	bodies, _ := opts["error_body"].(map[string]interface{})
	answer := func(status int, body interface{}) gin.HandlerFunc {
		return func(c *gin.Context) {
			c.Header(core.KrakendHeaderName, core.KrakendHeaderValue)
			c.Header(server.CompleteResponseHeaderName, server.HeaderIncompleteResponseValue)
			c.JSON(status, body)
		}
	}
	if body, ok := bodies["404"]; ok && body != nil {
		engine.NoRoute(answer(http.StatusNotFound, body))
	}
	if body, ok := bodies["405"]; ok && body != nil {
		engine.NoMethod(answer(http.StatusMethodNotAllowed, body))
	}
}
