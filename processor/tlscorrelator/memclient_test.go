package tlscorrelator

import (
	"context"

	"go.opentelemetry.io/collector/extension/xextension/storage"
)

// memClient is an in-memory storage.Client for measuring snapshot sizes.
type memClient struct{ m map[string][]byte }

func (c *memClient) Get(_ context.Context, k string) ([]byte, error) { return c.m[k], nil }
func (c *memClient) Set(_ context.Context, k string, v []byte) error { c.m[k] = v; return nil }
func (c *memClient) Delete(_ context.Context, k string) error        { delete(c.m, k); return nil }
func (c *memClient) Close(context.Context) error                     { return nil }
func (c *memClient) Batch(_ context.Context, ops ...*storage.Operation) error {
	for _, op := range ops {
		switch op.Type {
		case storage.Get:
			op.Value = c.m[op.Key]
		case storage.Set:
			c.m[op.Key] = op.Value
		case storage.Delete:
			delete(c.m, op.Key)
		}
	}
	return nil
}
