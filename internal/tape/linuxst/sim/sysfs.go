//go:build linux

package sim

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// layout creates the sysfs entries and device nodes of a path the way the
// kernel lays them out:
//
//	devices/platform/host<H>/target<H>:<C>:<T>/<H>:<C>:<T>:<L>/{type,vendor,model,rev,vpd_pg80,vpd_pg83,state}
//	  .../scsi_tape/{stN,stNl,stNm,stNa,nstN,nstNl,nstNm,nstNa}/{dev,device -> ../../../<H:C:T:L>}
//	  .../scsi_generic/sgN/{dev,device}   .../scsi_changer/schN/{dev,device}
//	class/scsi_tape/<name> -> ../../devices/.../scsi_tape/<name> (and so on)
//	bus/scsi/devices/<H:C:T:L> -> ../../../devices/.../<H:C:T:L>
//
// and an empty file in the device directory for each node. Call with h.mu
// held.
func (h *Host) layout(p *Path, devType int, id Identity) error {
	a := p.addr
	rel := filepath.Join("devices", "platform", "host"+strconv.Itoa(a.Host),
		fmt.Sprintf("target%d:%d:%d", a.Host, a.Channel, a.Target), a.String())
	dir := filepath.Join(h.sys, rel)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	p.created = append(p.created, dir)
	attrs := map[string][]byte{
		"type":     []byte(strconv.Itoa(devType) + "\n"),
		"vendor":   append(padded(id.Vendor, 8), '\n'),
		"model":    append(padded(id.Product, 16), '\n'),
		"rev":      append(padded(id.Revision, 4), '\n'),
		"state":    []byte("running\n"),
		"vpd_pg80": inquiry([]byte{0x12, 1, 0x80, 0, 0xFF, 0}, byte(devType), id, false).data,
		"vpd_pg83": inquiry([]byte{0x12, 1, 0x83, 0, 0xFF, 0}, byte(devType), id, false).data,
	}
	for name, b := range attrs {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o444); err != nil {
			return fmt.Errorf("sim: %w", err)
		}
	}
	bus := filepath.Join(h.sys, "bus", "scsi", "devices", a.String())
	if err := os.Symlink(filepath.Join("..", "..", "..", rel), bus); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	p.created = append(p.created, bus)
	if p.drive != nil {
		n := h.nextST
		h.nextST++
		for _, suffix := range []string{"", "l", "m", "a"} {
			for _, prefix := range []string{"st", "nst"} {
				name := prefix + strconv.Itoa(n) + suffix
				if err := h.node(p, rel, "scsi_tape", name, &node{path: p, kind: nodeST, rewind: prefix == "st"}); err != nil {
					return err
				}
			}
		}
	} else {
		name := "sch" + strconv.Itoa(h.nextCH)
		h.nextCH++
		if err := h.node(p, rel, "scsi_changer", name, &node{path: p, kind: nodeCH}); err != nil {
			return err
		}
	}
	name := "sg" + strconv.Itoa(h.nextSG)
	h.nextSG++
	return h.node(p, rel, "scsi_generic", name, &node{path: p, kind: nodeSG})
}

// node creates one class entry and its device node.
func (h *Host) node(p *Path, rel, class, name string, n *node) error {
	dir := filepath.Join(h.sys, rel, class, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	if err := os.Symlink(filepath.Join("..", "..", "..", p.addr.String()), filepath.Join(dir, "device")); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dev"), []byte(fmt.Sprintf("%d:%d\n", 9, h.nextFD)), 0o444); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	link := filepath.Join(h.sys, "class", class, name)
	if err := os.Symlink(filepath.Join("..", "..", rel, class, name), link); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	dev := filepath.Join(h.dev, name)
	if err := os.WriteFile(dev, nil, 0o600); err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	p.created = append(p.created, link, dev)
	p.Nodes = append(p.Nodes, name)
	h.nodes[dev] = n
	return nil
}
