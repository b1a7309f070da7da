package main

import (
	"context"
	"fmt"
	"io"

	"github.com/luraproject/lura/v2/config"
	"github.com/luraproject/lura/v2/proxy"
	"gocloud.dev/pubsub"
	_ "gocloud.dev/pubsub/kafkapubsub" // kafka:// topics, brokers from KAFKA_BROKERS
)

// pubsubPublisher is KrakenD CE's own Kafka publisher (krakend-pubsub), which cannot be fetched here:
// rebuilt on the library it uses, gocloud.dev/pubsub with Sarama, with its defaults (acks=1, no key, no
// TLS or SASL). The body is the message, forwarded headers its record headers, the answer an empty 200.
// `make bench` compares the plugin with it.
const pubsubPublisher = "backend/pubsub/publisher"

// publisherBackend is the backend for b when it is a publisher (host "kafka://", extra_config
// {"backend/pubsub/publisher": {"topic_url": "T"}}), else nil.
func publisherBackend(ctx context.Context, b *config.Backend) (proxy.Proxy, error) {
	settings, ok := b.ExtraConfig[pubsubPublisher].(map[string]interface{})
	if !ok {
		return nil, nil
	}
	name, _ := settings["topic_url"].(string)
	if len(b.Host) == 0 || name == "" {
		return nil, fmt.Errorf("%s: needs a host (kafka://) and a topic_url", pubsubPublisher)
	}
	topic, err := pubsub.OpenTopic(ctx, b.Host[0]+name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", pubsubPublisher, err)
	}
	go func() {
		<-ctx.Done()
		_ = topic.Shutdown(context.Background())
	}()
	return func(ctx context.Context, r *proxy.Request) (*proxy.Response, error) {
		var body []byte
		if r.Body != nil {
			body, err = io.ReadAll(r.Body)
			r.Body.Close()
			if err != nil {
				return nil, err
			}
		}
		metadata := make(map[string]string, len(r.Headers))
		for k, v := range r.Headers {
			if len(v) > 0 {
				metadata[k] = v[0]
			}
		}
		if err := topic.Send(ctx, &pubsub.Message{Body: body, Metadata: metadata}); err != nil {
			return nil, err
		}
		return &proxy.Response{IsComplete: true, Data: map[string]interface{}{}}, nil
	}, nil
}
