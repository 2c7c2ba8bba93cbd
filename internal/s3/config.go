package s3

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth"
)

const (
	// minPartSize is the least size S3 accepts for a multipart part other
	// than the last.
	minPartSize = 5 << 20
	// maxPartSize is the largest part S3 accepts, uploaded or copied.
	maxPartSize = 5 << 30
	// maxParts is the most parts one multipart upload may have.
	maxParts = 10000

	// DefaultPartSize is the size of the parts a stream is uploaded in, and so
	// the memory one stream being written holds (twice: one part is read while
	// the previous one is sent). With 10,000 parts it bounds one stream at
	// about 78 GiB.
	DefaultPartSize = 8 << 20
	// DefaultPresignExpiry is how long a presigned blob URL stays valid.
	DefaultPresignExpiry = 15 * time.Minute
	// maxPresignExpiry is the longest validity S3 signs (SigV4: seven days).
	maxPresignExpiry = 7 * 24 * time.Hour

	defaultEndpoint = "s3.amazonaws.com"
)

// Config says where the store lives and how to reach it. ParseURL makes one
// from an s3:// URL; Credentials come from elsewhere (CredentialsFromEnv or
// the configuration file), never from the URL.
type Config struct {
	Bucket string
	// Prefix is prepended to every key, without leading or trailing slash;
	// empty for the bucket's root.
	Prefix string
	// Endpoint is HOST[:PORT] of the S3 API; s3.amazonaws.com when empty.
	Endpoint string
	// Region is the bucket's region; when empty it is asked of the service.
	Region string
	// Insecure speaks plain HTTP instead of HTTPS.
	Insecure bool
	// PathStyle addresses the bucket as HOST/BUCKET rather than
	// BUCKET.HOST; when false the client chooses (path style for endpoints
	// other than AWS).
	PathStyle bool
	// Presign lets BlobURL hand out presigned GET URLs, so that the registry
	// can redirect blob downloads to the object store.
	Presign bool
	// PresignExpiry is how long such a URL is valid; DefaultPresignExpiry when zero.
	PresignExpiry time.Duration
	// PartSize is the multipart part size for streams; DefaultPartSize when zero.
	PartSize int64
	// Pointers lets a commit of an upload that is one large data object
	// write a pointer to that object at the blob's key instead of copying
	// it (pointer.go). Every berth reading the bucket follows pointers
	// whatever this says; a berth older than pointers serves one as an
	// empty blob and removes the data it names, so it is turned on only once
	// every replica runs a berth that knows them.
	Pointers bool

	Credentials Credentials

	// transport, when set, carries the requests (tests count them).
	transport http.RoundTripper
}

// Credentials sign requests. Empty credentials make anonymous requests.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
}

// String shows the access key id only.
func (c Credentials) String() string {
	if c.AccessKeyID == "" {
		return "anonymous"
	}
	return "access key " + c.AccessKeyID
}

// GoString redacts too, so that %#v of a Config holds no secret.
func (c Credentials) GoString() string { return "s3.Credentials{" + c.String() + "}" }

// MarshalJSON redacts as String does, so that a Config logged through a JSON
// handler (slog.Any) or dumped as JSON holds no secret.
func (c Credentials) MarshalJSON() ([]byte, error) { return json.Marshal(c.String()) }

// CredentialsFromEnv reads the usual AWS variables through getenv
// (os.Getenv in the composition root): AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.
func CredentialsFromEnv(getenv func(string) string) Credentials {
	return Credentials{
		AccessKeyID:     getenv("AWS_ACCESS_KEY_ID"),
		SecretAccessKey: getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken:    getenv("AWS_SESSION_TOKEN"),
	}
}

// urlFormat is shown in the hints of ParseURL's errors.
const urlFormat = "s3://BUCKET[/PREFIX]?endpoint=HOST:PORT&region=REGION&insecure=true&path_style=true&presign=true&presign_expiry=15m&part_size=8388608&pointers=true"

// ParseURL parses
//
//	s3://BUCKET[/PREFIX][?endpoint=HOST[:PORT]][&region=R][&insecure=true]
//	    [&path_style=true][&presign=true][&presign_expiry=DURATION][&part_size=BYTES]
//	    [&pointers=true]
//
// into a Config without credentials. Every parameter is optional; an unknown
// parameter, credentials in the URL, or an invalid value is invalid.
func ParseURL(s string) (Config, error) {
	invalid := func(format string, args ...any) error {
		return berth.Errorf(berth.CodeInvalid, "blob store URL: "+format, args...).
			WithHint("write it as %s", urlFormat)
	}
	u, err := url.Parse(s)
	if err != nil {
		// url.Parse's error repeats the URL; it holds no secret worth hiding
		// once userinfo is refused, but keep the message short.
		return Config{}, invalid("not a URL")
	}
	if u.Scheme != "s3" {
		return Config{}, invalid("scheme %q is not s3", u.Scheme)
	}
	if u.User != nil {
		return Config{}, berth.Errorf(berth.CodeInvalid, "blob store URL: credentials do not belong in the URL").
			WithHint("remove them from the URL and set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead")
	}
	if u.Opaque != "" || u.Fragment != "" {
		return Config{}, invalid("%q is not of the form s3://BUCKET/PREFIX", s)
	}
	c := Config{Bucket: u.Host}
	if err := checkBucket(c.Bucket); err != nil {
		return Config{}, invalid("%v", err)
	}
	if c.Prefix, err = cleanPrefix(u.Path); err != nil {
		return Config{}, invalid("%v", err)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Config{}, invalid("query: %v", err)
	}
	for k, vs := range q {
		if len(vs) != 1 {
			return Config{}, invalid("parameter %s is given %d times", k, len(vs))
		}
		v := vs[0]
		switch k {
		case "endpoint":
			if v == "" || strings.ContainsAny(v, "/?#@ ") {
				return Config{}, invalid("endpoint %q is not HOST[:PORT]", v)
			}
			c.Endpoint = v
		case "region":
			c.Region = v
		case "insecure":
			c.Insecure, err = strconv.ParseBool(v)
		case "path_style":
			c.PathStyle, err = strconv.ParseBool(v)
		case "presign":
			c.Presign, err = strconv.ParseBool(v)
		case "presign_expiry":
			c.PresignExpiry, err = time.ParseDuration(v)
		case "part_size":
			c.PartSize, err = strconv.ParseInt(v, 10, 64)
		case "pointers":
			c.Pointers, err = strconv.ParseBool(v)
		default:
			return Config{}, invalid("unknown parameter %q", k)
		}
		if err != nil {
			return Config{}, invalid("parameter %s=%q: %v", k, v, err)
		}
	}
	if err := c.check(); err != nil {
		return Config{}, invalid("%v", err)
	}
	return c, nil
}

// check validates c and fills in defaults.
func (c *Config) check() error {
	if err := checkBucket(c.Bucket); err != nil {
		return err
	}
	p, err := cleanPrefix(c.Prefix)
	if err != nil {
		return err
	}
	c.Prefix = p
	if c.Endpoint == "" {
		c.Endpoint = defaultEndpoint
	}
	switch {
	case c.PresignExpiry == 0:
		c.PresignExpiry = DefaultPresignExpiry
	case c.PresignExpiry < time.Second || c.PresignExpiry > maxPresignExpiry:
		return fmt.Errorf("presign_expiry %s is not between 1s and %s", c.PresignExpiry, maxPresignExpiry)
	}
	switch {
	case c.PartSize == 0:
		c.PartSize = DefaultPartSize
	case c.PartSize < minPartSize || c.PartSize > 1<<30:
		return fmt.Errorf("part_size %d is not between %d (5 MiB, the least S3 accepts) and %d (1 GiB)", c.PartSize, minPartSize, 1<<30)
	}
	return nil
}

// checkBucket accepts S3's bucket names: 3 to 63 of [a-z0-9.-], starting and
// ending with a letter or digit.
func checkBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("bucket name %q is not 3 to 63 characters", b)
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return fmt.Errorf("bucket name %q holds characters other than [a-z0-9.-]", b)
		}
	}
	if b[0] == '.' || b[0] == '-' || b[len(b)-1] == '.' || b[len(b)-1] == '-' {
		return fmt.Errorf("bucket name %q must start and end with a letter or digit", b)
	}
	return nil
}

// cleanPrefix trims slashes from p and refuses empty, "." and ".." segments.
func cleanPrefix(p string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return "", nil
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", fmt.Errorf("prefix %q has an empty, . or .. segment", p)
		}
	}
	if len(p) > 512 {
		return "", fmt.Errorf("prefix is %d characters, more than 512", len(p))
	}
	return p, nil
}
