package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	gologging "github.com/krakend/krakend-gologging/v2"
	jose "github.com/krakend/krakend-jose/v2"
	jsonschema "github.com/krakend/krakend-jsonschema/v2"
	"github.com/luraproject/lura/v2/config"
	"github.com/luraproject/lura/v2/proxy"
	krakendgin "github.com/luraproject/lura/v2/router/gin"
	"github.com/luraproject/lura/v2/transport/http/client"
	"github.com/luraproject/lura/v2/transport/http/client/graphql"
	clientplugin "github.com/luraproject/lura/v2/transport/http/client/plugin"
	schema "github.com/santhosh-tekuri/jsonschema/v6"
)

// Namespaces lists extra_config namespaces by the level KrakenD reads them at.
type Namespaces struct {
	Service, Endpoint, Backend []string
}

// aliases are the names KrakenD CE documents for the namespaces this gateway implements, renamed by
// lura's Normalize to the names the modules read (as KrakenD CE's main registers them).
var aliases = map[string]string{
	"router":                 krakendgin.Namespace,
	"proxy":                  proxy.Namespace,
	"plugin/http-client":     clientplugin.Namespace,
	"backend/http":           client.Namespace,
	"backend/graphql":        graphql.Namespace,
	"telemetry/logging":      gologging.Namespace,
	"auth/validator":         jose.ValidatorNamespace,
	"auth/signer":            jose.SignerNamespace,
	"validation/json-schema": jsonschema.Namespace,
}

func setAliases() {
	for short, long := range aliases {
		config.ExtraConfigAlias[short] = long
	}
}

// implemented are the namespaces something in this gateway reads, at the level it reads them (names
// after Normalize). Each is checked against the source of what reads it:
//   - router (lura router/gin: engine options, auto_options; error_body here), telemetry/logging
//     (krakend-gologging), auth/validator at service level (krakend-jose's shared_cache_duration);
//   - proxy on endpoints (lura proxy: sequential, static, combiner, flatmap_filter), auth/validator and
//     auth/signer (krakend-jose gin), validation/json-schema (krakend-jsonschema);
//   - on backends: plugin/http-client (lura's plugin executor), backend/http (lura's status handler:
//     return_error_code, return_error_details), backend/http/client (lura's HTTP proxy: send_body_on_redirect;
//     lura reads this one by that name only), backend/graphql (lura), proxy (lura: flatmap_filter, shadow).
//
// Everything else, e.g. plugin/req-resp-modifier and plugin/http-server (lura reads them, but this
// gateway loads no modifier or server plugins) or qos/ratelimit/router (a CE module not in this
// gateway), would be ignored: the gateway refuses it instead.
var implemented = Namespaces{
	Service:  []string{krakendgin.Namespace, gologging.Namespace, jose.ValidatorNamespace},
	Endpoint: []string{proxy.Namespace, jose.ValidatorNamespace, jose.SignerNamespace, jsonschema.Namespace},
	Backend: []string{clientplugin.Namespace, client.Namespace, "backend/http/client", graphql.Namespace,
		proxy.Namespace},
}

// shortName is the name KrakenD CE documents for a namespace this gateway implements.
func shortName(namespace string) string {
	for short, long := range aliases {
		if long == namespace {
			return short
		}
	}
	return namespace
}

// ginParam is a path parameter as lura's parser rewrites it for gin (/:topic).
var ginParam = regexp.MustCompile(`/:([^/]+)`)

// written is an endpoint's path as its config writes it (/v1/event/{topic}).
func written(endpoint string) string {
	return ginParam.ReplaceAllString(endpoint, "/{$1}")
}

// refuseUnimplemented is an error naming every extra_config namespace of cfg (already normalized) that
// neither the gateway nor ext implements, and where it is.
func refuseUnimplemented(cfg config.ServiceConfig, ext Namespaces) error {
	var refused []string
	refuse := func(where string, extra config.ExtraConfig, own, extension []string) {
		allowed := append(append([]string{}, own...), extension...)
		var unknown []string
		for namespace := range extra {
			known := false
			for _, a := range allowed {
				known = known || a == namespace
			}
			if !known {
				unknown = append(unknown, namespace)
			}
		}
		sort.Strings(unknown)
		for _, namespace := range unknown {
			names := make([]string, len(allowed))
			for i, a := range allowed {
				names[i] = shortName(a)
			}
			refused = append(refused, fmt.Sprintf("%s: %s is not implemented by this gateway, which would ignore it; "+
				"it implements here only %s", where, namespace, strings.Join(names, ", ")))
		}
	}
	refuse("service", cfg.ExtraConfig, implemented.Service, ext.Service)
	for _, e := range cfg.Endpoints {
		where := "endpoint " + written(e.Endpoint)
		refuse(where, e.ExtraConfig, implemented.Endpoint, ext.Endpoint)
		for i, b := range e.Backend {
			refuse(fmt.Sprintf("%s: backend %d", where, i), b.ExtraConfig, implemented.Backend, ext.Backend)
		}
	}
	if len(cfg.AsyncAgents) > 0 {
		refused = append(refused, "service: async_agent is not implemented by this gateway, which would ignore it")
	}
	if len(refused) > 0 {
		return fmt.Errorf("%s", strings.Join(refused, "\n"))
	}
	return nil
}

// joseAlgorithms are the algorithms krakend-jose v2.12.3 validates (jose.go's supportedAlgorithms, not
// exported); with another, its handler would stop the gateway at start-up.
var joseAlgorithms = map[string]bool{"EdDSA": true, "HS256": true, "HS384": true, "HS512": true, "RS256": true,
	"RS384": true, "RS512": true, "ES256": true, "ES384": true, "ES512": true, "PS256": true, "PS384": true,
	"PS512": true}

// checkModules refuses module settings that would otherwise only fail at the first request, or fail
// open: krakend-jsonschema serves an endpoint unvalidated when its schema does not compile.
func checkModules(cfg config.ServiceConfig) error {
	for _, e := range cfg.Endpoints {
		validator, err := jose.GetSignatureConfig(e)
		if err != nil && err != jose.ErrNoValidatorCfg {
			return fmt.Errorf("endpoint %s: auth/validator: %w", written(e.Endpoint), err)
		}
		if err == nil && !joseAlgorithms[validator.Alg] {
			return fmt.Errorf("endpoint %s: auth/validator: unknown alg %q", written(e.Endpoint), validator.Alg)
		}
		if s, ok := e.ExtraConfig[jsonschema.Namespace]; ok {
			var text bytes.Buffer
			if err := json.NewEncoder(&text).Encode(s); err != nil {
				return fmt.Errorf("endpoint %s: validation/json-schema: %w", written(e.Endpoint), err)
			}
			doc, err := schema.UnmarshalJSON(&text)
			if err == nil {
				c := schema.NewCompiler()
				if err = c.AddResource("./schema.json", doc); err == nil {
					_, err = c.Compile("./schema.json")
				}
			}
			if err != nil {
				return fmt.Errorf("endpoint %s: validation/json-schema: %w", written(e.Endpoint), err)
			}
		}
	}
	return nil
}
