module github.com/krakend-kafka/krakend-kafka/tests/msk-iam-signer

go 1.25

require github.com/aws/aws-sdk-go-v2 v1.36.3

require github.com/aws/smithy-go v1.22.2 // indirect
