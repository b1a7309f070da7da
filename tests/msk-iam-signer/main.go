// Command msk-iam-signer prints the MSK IAM token that AWS's own Go SigV4 signer (aws-sdk-go-v2)
// gives for fixed inputs, the steps being those of AWS's aws-msk-iam-sasl-signer-go. The Rust
// signer's test compares its token with this one byte for byte.
//
//	msk-iam-signer ACCESS_KEY SECRET SESSION_TOKEN REGION UNIX_SECONDS USER_AGENT
//
// An empty SESSION_TOKEN means none. Prints the token, a space, and its expiry in ms since the epoch.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

func main() {
	if len(os.Args) != 7 {
		fmt.Fprintln(os.Stderr, "usage: msk-iam-signer ACCESS_KEY SECRET SESSION_TOKEN REGION UNIX_SECONDS USER_AGENT")
		os.Exit(2)
	}
	creds := aws.Credentials{AccessKeyID: os.Args[1], SecretAccessKey: os.Args[2], SessionToken: os.Args[3]}
	region := os.Args[4]
	seconds, err := strconv.ParseInt(os.Args[5], 10, 64)
	check(err)
	at := time.Unix(seconds, 0).UTC()

	query := url.Values{"Action": {"kafka-cluster:Connect"}, "X-Amz-Expires": {"900"}}
	target := url.URL{Scheme: "https", Host: "kafka." + region + ".amazonaws.com", Path: "/", RawQuery: query.Encode()}
	req, err := http.NewRequest(http.MethodGet, target.String(), nil)
	check(err)
	empty := sha256.Sum256(nil)
	signed, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, req, hex.EncodeToString(empty[:]), "kafka-cluster", region, at)
	check(err)

	u, err := url.Parse(signed)
	check(err)
	q := u.Query()
	q.Set("User-Agent", os.Args[6])
	u.RawQuery = q.Encode()
	fmt.Println(base64.RawURLEncoding.EncodeToString([]byte(u.String())), (seconds+900)*1000)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
