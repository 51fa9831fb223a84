package admin

// Helpers for the shapes the API handlers share: decoding the request
// body, filtering a list by name and answering a value or an error.

import "context"

// withBody adapts fn, a handler that takes the request body decoded into a
// T, to a handlerFunc. A body that does not decode is refused before fn
// runs.
func withBody[T any](fn func(ctx context.Context, r *request, in T) (int, any, error)) handlerFunc {
	return func(ctx context.Context, r *request) (int, any, error) {
		var in T
		if err := decode(r, &in); err != nil {
			return 0, nil, err
		}
		return fn(ctx, r, in)
	}
}

// byName keeps the records whose name (nameOf) is name; an empty name
// keeps them all. The result is never nil, so that no records encode as
// an empty JSON list.
func byName[T any](all []T, name string, nameOf func(T) string) []T {
	out := make([]T, 0, len(all))
	for _, v := range all {
		if name == "" || nameOf(v) == name {
			out = append(out, v)
		}
	}
	return out
}

// reply answers status with v, or err when it is not nil.
func reply(status int, v any, err error) (int, any, error) {
	if err != nil {
		return 0, nil, err
	}
	return status, v, nil
}
