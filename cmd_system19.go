package main

import (
	"fmt"
	"os"
	"sort"
	"text/tabwriter"

	"github.com/opencontainers/go-digest"

	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/image"
	"github.com/berth-project/berth/internal/units"
)

// diskUsage is what system df counts. Images share layers: a layer is
// counted once in the totals, and -v shows each image's shared and unique
// part, as Docker does.
type diskUsage struct {
	images []dfImage
	// imgSize is the size of every layer once; imgReclaim that of the
	// layers no image a container uses holds.
	imgSize, imgReclaim int64
	activeImgs          int
	ctrs                []dfContainer
	vols                []dfVolume
}

type dfImage struct {
	img          *image.Image
	size, shared int64
	containers   int
}

type dfContainer struct {
	rec     *container.Record
	size    int64
	volumes int
}

type dfVolume struct {
	name  string
	links int
	size  int64
}

func measureDisk(st *stores) (*diskUsage, error) {
	imgs, err := st.images.List()
	if err != nil {
		return nil, err
	}
	recs, err := st.containers.List()
	if err != nil {
		return nil, err
	}
	du := &diskUsage{}
	users := map[string]int{}
	for _, r := range recs {
		users[r.Image]++
		n := 0
		for _, m := range r.Mounts {
			if m.Type == "volume" {
				n++
			}
		}
		du.ctrs = append(du.ctrs, dfContainer{rec: r, size: st.containers.ChangesSize(r.ID), volumes: n})
	}
	layerSize := map[digest.Digest]int64{}
	holders := map[digest.Digest]int{}
	usedLayer := map[digest.Digest]bool{}
	for _, img := range imgs {
		sizes := st.images.LayerSizes(img)
		for i, ch := range img.ChainIDs {
			layerSize[ch] = sizes[i]
			holders[ch]++
			if users[img.ID.String()] > 0 {
				usedLayer[ch] = true
			}
		}
		if users[img.ID.String()] > 0 {
			du.activeImgs++
		}
	}
	for ch, n := range layerSize {
		du.imgSize += n
		if !usedLayer[ch] {
			du.imgReclaim += n
		}
	}
	for _, img := range imgs {
		d := dfImage{img: img, size: img.Size, containers: users[img.ID.String()]}
		for _, ch := range img.ChainIDs {
			if holders[ch] > 1 {
				d.shared += layerSize[ch]
			}
		}
		du.images = append(du.images, d)
	}
	vols, err := st.volumes.List()
	if err != nil {
		return nil, err
	}
	links := map[string]int{}
	for _, r := range recs {
		for _, m := range r.Mounts {
			if m.Type == "volume" {
				links[m.Name]++
			}
		}
	}
	for _, v := range vols {
		size, _ := st.volumes.Size(v.Name) // one removed meanwhile counts as empty
		du.vols = append(du.vols, dfVolume{name: v.Name, links: links[v.Name], size: size})
	}
	return du, nil
}

// summary is system df's three lines.
func (du *diskUsage) summary() []dfRow {
	var ctrSize, ctrReclaim, volSize, volReclaim int64
	active, activeVols := 0, 0
	for _, c := range du.ctrs {
		ctrSize += c.size
		if c.rec.State.Running {
			active++
		} else {
			ctrReclaim += c.size
		}
	}
	for _, v := range du.vols {
		volSize += v.size
		if v.links > 0 {
			activeVols++
		} else {
			volReclaim += v.size
		}
	}
	rows := []dfRow{
		{Type: "Images", TotalCount: len(du.images), Active: du.activeImgs, size: du.imgSize, reclaim: du.imgReclaim},
		{Type: "Containers", TotalCount: len(du.ctrs), Active: active, size: ctrSize, reclaim: ctrReclaim},
		{Type: "Local Volumes", TotalCount: len(du.vols), Active: activeVols, size: volSize, reclaim: volReclaim},
	}
	for i := range rows {
		rows[i].Size, rows[i].Reclaimable = units.HumanSize(rows[i].size), units.HumanSize(rows[i].reclaim)
	}
	return rows
}

// printVerbose is system df -v: every image, container and volume.
func (du *diskUsage) printVerbose() error {
	tw := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
	fmt.Fprint(tw, "Images space usage:\n\nREPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\tSHARED SIZE\tUNIQUE SIZE\tCONTAINERS\n")
	sort.SliceStable(du.images, func(i, j int) bool { return du.images[i].img.Created().After(du.images[j].img.Created()) })
	for _, d := range du.images {
		names := d.img.RepoTags
		if len(names) == 0 {
			names = []string{"<none>:<none>"}
		}
		for _, n := range names {
			repo, tag := "<none>", "<none>"
			if n != "<none>:<none>" {
				repo, tag = image.SplitTagged(n)
				repo = image.FamiliarName(repo)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", repo, tag, trunc(d.img.ID.String(), false), units.Ago(d.img.Created()),
				units.HumanSize(d.size), units.HumanSize(d.shared), units.HumanSize(d.size-d.shared), d.containers)
		}
	}
	fmt.Fprint(tw, "\nContainers space usage:\n\nCONTAINER ID\tIMAGE\tCOMMAND\tLOCAL VOLUMES\tSIZE\tCREATED\tSTATUS\tNAMES\n")
	for _, c := range du.ctrs {
		row := psRowOf(c.rec, false)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", row.ID, row.Image, row.Command, c.volumes, units.HumanSize(c.size),
			row.RunningFor, row.Status, row.Names)
	}
	fmt.Fprint(tw, "\nLocal Volumes space usage:\n\nVOLUME NAME\tLINKS\tSIZE\n")
	for _, v := range du.vols {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", v.name, v.links, units.HumanSize(v.size))
	}
	return tw.Flush()
}
