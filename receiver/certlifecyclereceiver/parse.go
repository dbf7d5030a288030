package certlifecyclereceiver // import "github.com/certpulse/certpulse/receiver/certlifecyclereceiver"

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/certpulse/certpulse/internal/attrs"
)

// Request formats.
const (
	formatStructured = "cloudevents-structured"
	formatBatch      = "cloudevents-batch"
	formatBinary     = "cloudevents-binary"
	formatJSON       = "json"
)

// requestError is a rejection: an HTTP status, a cause for the metrics and
// what to tell the sender.
type requestError struct {
	Status  int          `json:"-"`
	Cause   string       `json:"-"`
	Message string       `json:"error"`
	Fields  []FieldError `json:"errors,omitempty"`
}

func (e *requestError) Error() string { return e.Message }

func reject(status int, cause, format string, args ...any) *requestError {
	return &requestError{Status: status, Cause: cause, Message: fmt.Sprintf(format, args...)}
}

// ceEnvelope is a structured-mode CloudEvent. Extension attributes are
// allowed by the spec and ignored.
type ceEnvelope struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Time            string          `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
	DataBase64      string          `json:"data_base64"`
}

// plainEvent is the plain JSON form: envelope fields beside the data.
type plainEvent struct {
	Type   string `json:"type"`
	ID     string `json:"id,omitempty"`
	Source string `json:"source,omitempty"`
	Time   string `json:"time,omitempty"`
	EventData
}

// parseRequest decodes and validates every event of a request. It is
// all-or-nothing: one bad entry rejects the request, naming each bad field.
func parseRequest(h http.Header, body []byte, lim limits, maxEvents int, now time.Time) ([]Event, *requestError) {
	if h.Get("Ce-Specversion") != "" {
		ev, err := parseBinary(h, body, lim, now)
		if err != nil {
			return nil, err
		}
		return []Event{ev}, nil
	}
	ct := h.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, reject(http.StatusUnsupportedMediaType, "content_type", "Content-Type %q is not a media type; use application/cloudevents+json, application/cloudevents-batch+json or application/json", ct)
	}
	var raws []json.RawMessage
	var format string
	switch mt {
	case "application/cloudevents+json":
		format = formatStructured
		raws = []json.RawMessage{json.RawMessage(body)}
	case "application/cloudevents-batch+json":
		format = formatBatch
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, malformed("a CloudEvents batch must be a JSON array", err)
		}
	case "application/json":
		format = formatJSON
		trimmed := bytes.TrimSpace(body)
		if len(trimmed) > 0 && trimmed[0] == '[' {
			if err := json.Unmarshal(trimmed, &raws); err != nil {
				return nil, malformed("body must be a JSON object or array of objects", err)
			}
		} else {
			raws = []json.RawMessage{json.RawMessage(trimmed)}
		}
	default:
		return nil, reject(http.StatusUnsupportedMediaType, "content_type", "Content-Type %q is not supported; use application/cloudevents+json, application/cloudevents-batch+json, application/json, or CloudEvents binary mode (ce-* headers)", mt)
	}
	if len(raws) == 0 {
		return nil, reject(http.StatusBadRequest, "invalid", "no events in the request")
	}
	if len(raws) > maxEvents {
		return nil, reject(http.StatusRequestEntityTooLarge, "too_many_events", "%d events in one request; the limit is %d", len(raws), maxEvents)
	}
	events := make([]Event, 0, len(raws))
	var fields []FieldError
	for i, raw := range raws {
		var ev Event
		var fe []FieldError
		if format == formatJSON {
			ev, fe = parsePlain(i, raw)
		} else {
			ev, fe = parseStructured(i, raw)
		}
		ev.Format = format
		if len(fe) == 0 {
			fe = ev.normalize(i, lim, now)
		}
		fields = append(fields, fe...)
		events = append(events, ev)
	}
	if len(fields) > 0 {
		return nil, &requestError{Status: http.StatusBadRequest, Cause: "invalid", Message: fmt.Sprintf("%d invalid field(s); no event of this request was accepted", len(fields)), Fields: fields}
	}
	return events, nil
}

func malformed(what string, err error) *requestError {
	return reject(http.StatusBadRequest, "malformed", "malformed JSON: %s: %v", what, err)
}

func parseStructured(i int, raw json.RawMessage) (Event, []FieldError) {
	var env ceEnvelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return Event{}, []FieldError{{i, "", "not a JSON object: " + err.Error()}}
	}
	ev := Event{ID: env.ID, Source: env.Source}
	var errs []FieldError
	if env.SpecVersion != "1.0" {
		errs = append(errs, FieldError{i, "specversion", fmt.Sprintf("must be \"1.0\", got %q", env.SpecVersion)})
	}
	if env.ID == "" {
		errs = append(errs, FieldError{i, "id", "is required"})
	}
	if env.Source == "" {
		errs = append(errs, FieldError{i, "source", "is required"})
	}
	errs = append(errs, ev.setType(i, env.Type)...)
	errs = append(errs, ev.setTime(i, env.Time)...)
	if env.DataContentType != "" && !isJSONType(env.DataContentType) {
		errs = append(errs, FieldError{i, "datacontenttype", "must be application/json"})
	}
	data := env.Data
	if env.DataBase64 != "" {
		b, err := base64.StdEncoding.DecodeString(env.DataBase64)
		if err != nil {
			errs = append(errs, FieldError{i, "data_base64", "is not base64"})
		}
		data = b
	}
	if len(data) == 0 || string(data) == "null" {
		errs = append(errs, FieldError{i, "data", "is required"})
		return ev, errs
	}
	errs = append(errs, decodeStrict(i, "data", data, &ev.Data)...)
	return ev, errs
}

func parseBinary(h http.Header, body []byte, lim limits, now time.Time) (Event, *requestError) {
	ev := Event{ID: h.Get("Ce-Id"), Source: h.Get("Ce-Source"), Format: formatBinary}
	var errs []FieldError
	if v := h.Get("Ce-Specversion"); v != "1.0" {
		errs = append(errs, FieldError{0, "ce-specversion", fmt.Sprintf("must be \"1.0\", got %q", v)})
	}
	if ev.ID == "" {
		errs = append(errs, FieldError{0, "ce-id", "is required"})
	}
	if ev.Source == "" {
		errs = append(errs, FieldError{0, "ce-source", "is required"})
	}
	errs = append(errs, ev.setType(0, h.Get("Ce-Type"))...)
	errs = append(errs, ev.setTime(0, h.Get("Ce-Time"))...)
	if ct := h.Get("Content-Type"); !isJSONType(ct) {
		return ev, reject(http.StatusUnsupportedMediaType, "content_type", "binary-mode CloudEvents need Content-Type application/json, got %q", ct)
	}
	errs = append(errs, decodeStrict(0, "data", body, &ev.Data)...)
	if len(errs) == 0 {
		errs = ev.normalize(0, lim, now)
	}
	if len(errs) > 0 {
		return ev, &requestError{Status: http.StatusBadRequest, Cause: "invalid", Message: fmt.Sprintf("%d invalid field(s); the event was not accepted", len(errs)), Fields: errs}
	}
	return ev, nil
}

func parsePlain(i int, raw json.RawMessage) (Event, []FieldError) {
	var p plainEvent
	if errs := decodeStrict(i, "", raw, &p); len(errs) > 0 {
		return Event{}, errs
	}
	ev := Event{ID: p.ID, Source: p.Source, Data: p.EventData}
	if ev.Source == "" {
		ev.Source = "json"
	}
	if ev.ID == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		ev.ID = hex.EncodeToString(b[:]) // no id, no dedup
	}
	errs := ev.setType(i, p.Type)
	errs = append(errs, ev.setTime(i, p.Time)...)
	return ev, errs
}

func (e *Event) setType(i int, t string) []FieldError {
	short, ok := attrs.LifecycleTypeOf(t)
	if !ok {
		if t == "" {
			return []FieldError{{i, "type", "is required"}}
		}
		return []FieldError{{i, "type", fmt.Sprintf("unknown type %q; use one of %s (or dev.certpulse.certificate.<type>)", t, strings.Join(attrs.LifecycleTypes, ", "))}}
	}
	e.Type = short
	return nil
}

func (e *Event) setTime(i int, s string) []FieldError {
	if s == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return []FieldError{{i, "time", "must be RFC 3339"}}
	}
	e.Time = t
	return nil
}

// decodeStrict decodes one JSON object, rejecting unknown fields and
// trailing data, and names the offending field.
func decodeStrict(i int, prefix string, data []byte, v any) []FieldError {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	field := func(f string) string {
		if prefix == "" {
			return f
		}
		if f == "" {
			return prefix
		}
		return prefix + "." + f
	}
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var pe *time.ParseError
		switch {
		case errors.As(err, &te):
			return []FieldError{{i, field(strings.TrimPrefix(te.Field, "EventData.")), fmt.Sprintf("must be %s, got %s", te.Type, te.Value)}}
		case errors.As(err, &pe):
			return []FieldError{{i, field(""), "a time must be RFC 3339: " + pe.Value}}
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return []FieldError{{i, field(name), "unknown field"}}
		}
		return []FieldError{{i, field(""), "malformed JSON: " + err.Error()}}
	}
	if dec.More() {
		return []FieldError{{i, field(""), "trailing data after the JSON object"}}
	}
	return nil
}

func isJSONType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}
