package engine

import (
	"errors"
	"fmt"
	"sync"
)

// Registry holds the engines of a node by backup type name, in the order
// they were registered. The daemon registers them when it wires the NDMP
// server; the server offers exactly these. Its methods are safe for
// concurrent use; a nil *Registry holds no engine.
type Registry struct {
	mu      sync.RWMutex
	engines []Engine
}

// NewRegistry returns a registry holding engines.
func NewRegistry(engines ...Engine) (*Registry, error) {
	r := &Registry{}
	for _, e := range engines {
		if err := r.Register(e); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Register adds e; its name must be new and not empty.
func (r *Registry) Register(e Engine) error {
	name := e.Info().Name
	if name == "" {
		return errors.New("engine: register: no backup type name")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, x := range r.engines {
		if x.Info().Name == name {
			return fmt.Errorf("engine: register: backup type %q is already registered", name)
		}
	}
	r.engines = append(r.engines, e)
	return nil
}

// Get returns the engine of backup type name.
func (r *Registry) Get(name string) (Engine, bool) {
	if r == nil {
		return nil, false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, e := range r.engines {
		if e.Info().Name == name {
			return e, true
		}
	}
	return nil, false
}

// Default returns the engine of an empty backup type name: the first one
// registered.
func (r *Registry) Default() (Engine, bool) {
	if r == nil {
		return nil, false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(r.engines) == 0 {
		return nil, false
	}
	return r.engines[0], true
}

// Infos describes every registered engine, in registration order.
func (r *Registry) Infos() []Info {
	if r == nil {
		return nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Info, len(r.engines))
	for i, e := range r.engines {
		out[i] = e.Info()
	}
	return out
}
