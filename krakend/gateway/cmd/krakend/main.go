// Command krakend is the gateway of the container image: lura (KrakenD CE's engine) with the KrakenD CE
// modules the Go module proxy serves, loading http-client plugins as KrakenD CE does. See package gateway.
//
//	krakend run -c krakend.json [-d] [-p port]   serve the configuration
//	krakend check -c krakend.json                parse and validate it
//	krakend test-plugin -c plugin.so             load an http-client plugin and check it registers
//	krakend version
package main

import (
	"os"

	"github.com/krakend-kafka/krakend-kafka/krakend/gateway"
)

func main() {
	os.Exit(gateway.Main(os.Args, gateway.Extension{}))
}
