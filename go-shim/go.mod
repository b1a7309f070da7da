module github.com/krakend-kafka/krakend-kafka/go-shim

go 1.25
