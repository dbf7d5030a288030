package certmanagerprocessor // import "github.com/certpulse/certpulse/processor/certmanagerprocessor"

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/certpulse/certpulse/internal/certpem"
)

// cert-manager's kinds and the annotations that tie a CertificateRequest to
// its Certificate.
const (
	kindCertificate   = "Certificate"
	kindRequest       = "CertificateRequest"
	apiGroupPrefix    = "cert-manager.io/"
	annCertName       = "cert-manager.io/certificate-name"
	annCertRevision   = "cert-manager.io/certificate-revision"
	watchDeleted      = "DELETED"
	maxCertificatePEM = 64 << 10
	maxDNSNames       = 100
)

// object is what the processor reads from one cert-manager object.
type object struct {
	kind      string
	event     string // the watch event type (ADDED, MODIFIED, DELETED); "" in pull mode
	namespace string
	name      string
	uid       string
	service   string // from the service annotation, or the owning Ingress

	// Certificate
	secretName   string
	dnsNames     []string
	revision     int64
	notAfter     time.Time
	renewalTime  time.Time
	lastFailure  time.Time
	ready        string // the Ready condition's status: True, False, Unknown or ""
	readyReason  string
	readyMessage string
	issuingMsg   string

	// CertificateRequest
	forCert     string
	forRevision int64
	approved    bool
	leaf        *x509.Certificate // the signed leaf, once the request is Ready
}

var errNotCertManager = errors.New("not a cert-manager Certificate or CertificateRequest")

// parseObject reads a k8sobjects record body: {type, object} in watch mode,
// the object itself in pull mode. errNotCertManager: some other object
// (passed on untouched); any other error: a cert-manager object that could
// not be read.
func parseObject(body pcommon.Value, serviceAnnotation string) (object, error) {
	var o object
	if body.Type() != pcommon.ValueTypeMap {
		return o, errNotCertManager
	}
	m := body.Map()
	if obj, ok := m.Get("object"); ok && obj.Type() == pcommon.ValueTypeMap {
		o.event = str(m, "type")
		m = obj.Map()
	}
	o.kind = str(m, "kind")
	if !strings.HasPrefix(str(m, "apiVersion"), apiGroupPrefix) || (o.kind != kindCertificate && o.kind != kindRequest) {
		return o, errNotCertManager
	}
	meta := sub(m, "metadata")
	o.namespace, o.name, o.uid = str(meta, "namespace"), str(meta, "name"), str(meta, "uid")
	if o.name == "" || o.namespace == "" {
		return o, fmt.Errorf("%s without metadata.name or metadata.namespace", o.kind)
	}
	ann := sub(meta, "annotations")
	o.service = str(ann, serviceAnnotation)
	if o.service == "" {
		o.service = ownerIngress(meta)
	}
	status := sub(m, "status")
	var err error
	switch o.kind {
	case kindCertificate:
		spec := sub(m, "spec")
		o.secretName = str(spec, "secretName")
		if v, ok := spec.Get("dnsNames"); ok && v.Type() == pcommon.ValueTypeSlice {
			for i := 0; i < v.Slice().Len() && i < maxDNSNames; i++ {
				o.dnsNames = append(o.dnsNames, v.Slice().At(i).AsString())
			}
		}
		if v, ok := status.Get("revision"); ok {
			if o.revision, err = intOf(v); err != nil {
				return o, fmt.Errorf("cert-manager Certificate %s/%s: status.revision: %w", o.namespace, o.name, err)
			}
		}
		for _, f := range []struct {
			key string
			dst *time.Time
		}{{"notAfter", &o.notAfter}, {"renewalTime", &o.renewalTime}, {"lastFailureTime", &o.lastFailure}} {
			if s := str(status, f.key); s != "" {
				if *f.dst, err = time.Parse(time.RFC3339, s); err != nil {
					return o, fmt.Errorf("cert-manager Certificate %s/%s: status.%s: %w", o.namespace, o.name, f.key, err)
				}
			}
		}
		if c, ok := condition(status, "Ready"); ok {
			o.ready, o.readyReason, o.readyMessage = str(c, "status"), str(c, "reason"), str(c, "message")
		}
		if c, ok := condition(status, "Issuing"); ok && str(c, "status") == "False" {
			o.issuingMsg = str(c, "message")
		}
	case kindRequest:
		o.forCert = str(ann, annCertName)
		if s := str(ann, annCertRevision); s != "" {
			if o.forRevision, err = strconv.ParseInt(s, 10, 64); err != nil {
				return o, fmt.Errorf("cert-manager CertificateRequest %s/%s: %s: %w", o.namespace, o.name, annCertRevision, err)
			}
		}
		if c, ok := condition(status, "Approved"); ok {
			o.approved = str(c, "status") == "True"
		}
		if c, ok := condition(status, "Ready"); ok {
			o.ready = str(c, "status")
		}
		if s := str(status, "certificate"); s != "" && o.ready == "True" {
			if o.leaf, err = parseLeaf(s); err != nil {
				return o, fmt.Errorf("cert-manager CertificateRequest %s/%s: status.certificate: %w", o.namespace, o.name, err)
			}
		}
	}
	return o, nil
}

// parseLeaf decodes status.certificate (base64 of a PEM bundle, the leaf
// first), bounded in size.
func parseLeaf(b64 string) (*x509.Certificate, error) {
	if len(b64) > maxCertificatePEM*4/3+4 {
		return nil, fmt.Errorf("larger than %d bytes", maxCertificatePEM)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, err
	}
	certs, err := certpem.Parse(raw)
	if err != nil {
		return nil, err
	}
	return certs[0], nil // the leaf first, then its chain
}

func ownerIngress(meta pcommon.Map) string {
	v, ok := meta.Get("ownerReferences")
	if !ok || v.Type() != pcommon.ValueTypeSlice {
		return ""
	}
	for i := 0; i < v.Slice().Len(); i++ {
		if r := v.Slice().At(i); r.Type() == pcommon.ValueTypeMap && str(r.Map(), "kind") == "Ingress" {
			return str(r.Map(), "name")
		}
	}
	return ""
}

func condition(status pcommon.Map, typ string) (pcommon.Map, bool) {
	v, ok := status.Get("conditions")
	if !ok || v.Type() != pcommon.ValueTypeSlice {
		return pcommon.Map{}, false
	}
	for i := 0; i < v.Slice().Len(); i++ {
		if c := v.Slice().At(i); c.Type() == pcommon.ValueTypeMap && str(c.Map(), "type") == typ {
			return c.Map(), true
		}
	}
	return pcommon.Map{}, false
}

func sub(m pcommon.Map, key string) pcommon.Map {
	if v, ok := m.Get(key); ok && v.Type() == pcommon.ValueTypeMap {
		return v.Map()
	}
	return pcommon.NewMap()
}

func str(m pcommon.Map, key string) string {
	if v, ok := m.Get(key); ok && v.Type() == pcommon.ValueTypeStr {
		return v.Str()
	}
	return ""
}

func intOf(v pcommon.Value) (int64, error) {
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return v.Int(), nil
	case pcommon.ValueTypeDouble:
		return int64(v.Double()), nil
	case pcommon.ValueTypeStr:
		return strconv.ParseInt(v.Str(), 10, 64)
	}
	return 0, fmt.Errorf("not a number: %s", v.AsString())
}
