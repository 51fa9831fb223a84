package simtap

import (
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// codec holds the zstd encoders and decoder of one cartridge, made on
// first use, and reusable buffers.
type codec struct {
	enc  [4]*zstd.Encoder
	dec  *zstd.Decoder
	raw  []byte
	out  []byte
	zbuf []byte
}

func (z *codec) scratch(n int) []byte {
	if cap(z.raw) < n {
		z.raw = make([]byte, n)
	}
	return z.raw[:n]
}

func (z *codec) encode(p []byte, comp Compression) ([]byte, error) {
	if z.enc[comp] == nil {
		level := map[Compression]zstd.EncoderLevel{
			Fast:    zstd.SpeedFastest,
			Default: zstd.SpeedDefault,
			Better:  zstd.SpeedBetterCompression,
		}[comp]
		e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		z.enc[comp] = e
	}
	z.zbuf = z.enc[comp].EncodeAll(p, z.zbuf[:0])
	return z.zbuf, nil
}

func (z *codec) decode(src []byte) ([]byte, error) {
	if z.dec == nil {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(2*MaxRecordSize))
		if err != nil {
			return nil, err
		}
		z.dec = d
	}
	out, err := z.dec.DecodeAll(src, z.out[:0])
	if err != nil {
		return nil, fmt.Errorf("decompress: %w", err)
	}
	if len(out) > MaxRecordSize {
		return nil, fmt.Errorf("decompress: record of %d bytes exceeds %d", len(out), MaxRecordSize)
	}
	z.out = out
	return out, nil
}

func (z *codec) close() {
	for _, e := range z.enc {
		if e != nil {
			_ = e.Close()
		}
	}
	if z.dec != nil {
		z.dec.Close()
	}
}

// frameSize returns the content size a zstd frame stored at off announces,
// or 0 if it does not say.
func (c *Cartridge) frameSize(off, n int64) uint32 {
	b := make([]byte, min(n, zstd.HeaderMaxSize))
	if _, err := c.f.ReadAt(b, off); err != nil {
		return 0
	}
	var h zstd.Header
	if err := h.Decode(b); err != nil || !h.HasFCS || h.FrameContentSize > MaxRecordSize {
		return 0
	}
	return uint32(h.FrameContentSize)
}
