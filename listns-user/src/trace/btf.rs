//! A reader of the kernel's BTF for the few facts listns needs from it:
//! the byte offset of a member in a named struct (inside anonymous structs
//! and unions too), a struct's size, and an enum's values.
//!
//! A general BTF library decodes every one of the kernel's ~150,000 types
//! into owned values and name maps (btf-rs took 0.15 s and 60 MB here, more
//! than the whole kernel pass of the scan); this walks the type section
//! once, noting where each type starts and which ids are named structs or
//! enums, and decodes only what a question touches. Every read is bounds
//! checked: a malformed file gives `None` or an error, never a panic (the
//! btf fuzz target runs this). The format: include/uapi/linux/btf.h and
//! Documentation/bpf/btf.rst.

use std::collections::{HashMap, HashSet};

/// `BTF_KIND_*`.
const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

/// `struct btf_type`: name_off, info, size/type.
const TYPE_HEADER: usize = 12;

/// The type section, indexed.
pub struct Btf<'a> {
    types: &'a [u8],
    strings: &'a [u8],
    little: bool,
    /// Start of each type in `types`; id N is `starts[N - 1]` (id 0 is void).
    starts: Vec<u32>,
    /// Name -> the first struct (lowest id) of that name.
    structs: HashMap<&'a [u8], u32>,
    /// Name -> every enum of that name.
    enums: HashMap<&'a [u8], Vec<u32>>,
}

/// One decoded type header.
#[derive(Clone, Copy)]
struct Head {
    name_off: u32,
    kind: u32,
    vlen: usize,
    kind_flag: bool,
    /// `size` or `type`, by kind.
    size_or_type: u32,
    /// Where its trailing data starts in `types`.
    data: usize,
}

impl<'a> Btf<'a> {
    /// Indexes `bytes`, whose header `offsets::check_header` accepted (the
    /// sections lie inside the file).
    pub fn parse(bytes: &'a [u8]) -> Result<Btf<'a>, String> {
        let little = bytes.get(..2) == Some(&[0x9f, 0xeb]);
        let word = |at: usize| -> Result<usize, String> {
            let b: [u8; 4] = bytes
                .get(at..at + 4)
                .and_then(|s| s.try_into().ok())
                .ok_or("BTF header cut short")?;
            Ok(if little {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            } as usize)
        };
        let hdr = word(4)?;
        let section = |off: usize, len: usize, what: &str| {
            hdr.checked_add(off)
                .and_then(|start| bytes.get(start..start.checked_add(len)?))
                .ok_or_else(|| format!("the BTF {what} section runs past the end of the file"))
        };
        let types = section(word(8)?, word(12)?, "type")?;
        let strings = section(word(16)?, word(20)?, "string")?;
        let mut btf = Btf {
            types,
            strings,
            little,
            starts: Vec::new(),
            structs: HashMap::new(),
            enums: HashMap::new(),
        };
        let mut at = 0;
        while at < types.len() {
            let head = btf
                .head_at(at)
                .ok_or_else(|| format!("BTF type {} cut short", btf.starts.len() + 1))?;
            let id = btf.starts.len() as u32 + 1;
            btf.starts.push(at as u32);
            let name = btf.name(head.name_off);
            if !name.is_empty() {
                match head.kind {
                    KIND_STRUCT => {
                        btf.structs.entry(name).or_insert(id);
                    }
                    KIND_ENUM => btf.enums.entry(name).or_default().push(id),
                    _ => {}
                }
            }
            let len = trailing(head.kind, head.vlen)
                .ok_or_else(|| format!("BTF type {id} has an unknown kind {}", head.kind))?;
            at = head
                .data
                .checked_add(len)
                .ok_or("BTF type length overflows")?;
        }
        Ok(btf)
    }

    fn u32_at(&self, at: usize) -> Option<u32> {
        let b: [u8; 4] = self.types.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if self.little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }

    fn head_at(&self, at: usize) -> Option<Head> {
        let info = self.u32_at(at + 4)?;
        Some(Head {
            name_off: self.u32_at(at)?,
            kind: (info >> 24) & 0x1f,
            vlen: (info & 0xffff) as usize,
            kind_flag: info >> 31 == 1,
            size_or_type: self.u32_at(at + 8)?,
            data: at + TYPE_HEADER,
        })
    }

    fn head(&self, id: u32) -> Option<Head> {
        let at = *self.starts.get((id as usize).checked_sub(1)?)?;
        self.head_at(at as usize)
    }

    /// The NUL-terminated string at `off` (empty when out of range).
    fn name(&self, off: u32) -> &'a [u8] {
        let rest = self.strings.get(off as usize..).unwrap_or_default();
        &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())]
    }

    /// The size of the first struct named `name`.
    pub fn struct_size(&self, name: &str) -> Option<u32> {
        self.head(*self.structs.get(name.as_bytes())?)
            .map(|h| h.size_or_type)
    }

    /// Byte offset of `member` in the first struct named `name`, looking
    /// inside anonymous structs and unions.
    pub fn member_offset(&self, name: &str, member: &str) -> Option<u32> {
        let id = *self.structs.get(name.as_bytes())?;
        self.find_member(id, member.as_bytes(), 0, &mut HashSet::new())
            .map(|bits| bits / 8)
    }

    /// Bit offset of `member` in struct or union `id`, plus `base_bits`.
    /// `seen`: the anonymous member types already searched (in malformed
    /// BTF one can contain itself); each is searched once, which changes
    /// no answer.
    fn find_member(
        &self,
        id: u32,
        member: &[u8],
        base_bits: u32,
        seen: &mut HashSet<u32>,
    ) -> Option<u32> {
        let head = self.head(id)?;
        if head.kind != KIND_STRUCT && head.kind != KIND_UNION {
            return None;
        }
        for i in 0..head.vlen {
            let at = head.data + i * 12;
            let (name_off, ty, offset) =
                (self.u32_at(at)?, self.u32_at(at + 4)?, self.u32_at(at + 8)?);
            // With kind_flag, the low 24 bits are the bit offset and the
            // high 8 a bitfield's size.
            let bit = if head.kind_flag {
                offset & 0x00ff_ffff
            } else {
                offset
            };
            let Some(bits) = base_bits.checked_add(bit) else {
                continue;
            };
            let name = self.name(name_off);
            if name == member {
                return Some(bits);
            }
            if name.is_empty()
                && seen.insert(ty)
                && let Some(inner) = self.aggregate(ty)
                && let Some(found) = self.find_member(inner, member, bits, seen)
            {
                return Some(found);
            }
        }
        None
    }

    /// The struct or union `id` is, through typedefs and modifiers (a
    /// short way: a chain of them can loop in malformed BTF).
    fn aggregate(&self, mut id: u32) -> Option<u32> {
        for _ in 0..16 {
            let head = self.head(id)?;
            match head.kind {
                KIND_STRUCT | KIND_UNION => return Some(id),
                KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                    id = head.size_or_type
                }
                _ => return None,
            }
        }
        None
    }

    /// (name, value) of every member of every enum named `name`.
    pub fn enum_values(&self, name: &str) -> Vec<(String, u32)> {
        let mut out = Vec::new();
        for &id in self.enums.get(name.as_bytes()).into_iter().flatten() {
            let Some(head) = self.head(id) else { continue };
            for i in 0..head.vlen {
                let at = head.data + i * 8;
                if let (Some(name_off), Some(val)) = (self.u32_at(at), self.u32_at(at + 4)) {
                    let name = String::from_utf8_lossy(self.name(name_off)).into_owned();
                    out.push((name, val));
                }
            }
        }
        out
    }
}

/// Bytes that follow a type's header, by kind (btf.rst, "Type encoding");
/// `None` for a kind this reader does not know, whose length it cannot
/// tell (libbpf refuses those too).
fn trailing(kind: u32, vlen: usize) -> Option<usize> {
    Some(match kind {
        KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
        KIND_ARRAY => 12,
        KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => vlen * 12,
        KIND_ENUM | KIND_FUNC_PROTO => vlen * 8,
        // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG.
        2 | 7 | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | 12 | 16
        | KIND_TYPE_TAG => 0,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

    /// Every (struct, member) the programs read, and more: anonymous
    /// unions, bitfields' neighbours, nested structs.
    const MEMBERS: &[(&str, &str)] = &[
        ("task_struct", "nsproxy"),
        ("task_struct", "real_cred"),
        ("task_struct", "thread_pid"),
        ("task_struct", "pid"),
        ("task_struct", "tgid"),
        ("task_struct", "real_parent"),
        ("task_struct", "flags"),
        ("task_struct", "comm"),
        ("task_struct", "signal"),
        ("task_struct", "cgroups"),
        ("cred", "user_ns"),
        ("cred", "uid"),
        ("cred", "euid"),
        ("pid", "level"),
        ("pid", "numbers"),
        ("upid", "ns"),
        ("nsproxy", "net_ns"),
        ("nsproxy", "pid_ns_for_children"),
        ("nsproxy", "time_ns_for_children"),
        ("ns_common", "inum"),
        ("ns_common", "ops"),
        ("net", "ns"),
        ("file", "f_inode"),
        ("file", "private_data"),
        ("inode", "i_sb"),
        ("inode", "i_ino"),
        ("inode", "i_rdev"),
        ("inode", "i_private"),
        ("super_block", "s_magic"),
        ("socket", "sk"),
        ("sock", "__sk_common"),
        ("sock_common", "skc_net"),
        ("sock_common", "skc_family"),
        ("css_set", "subsys"),
        ("cgroup", "kn"),
        ("kernfs_node", "id"),
        ("signal_struct", "live"),
        ("proc_ns_operations", "type"),
    ];

    /// What btf-rs says, as listns read it before this reader.
    fn btf_rs_offset(btf: &btf_rs::Btf, name: &str, member: &str) -> Option<u32> {
        use btf_rs::Type;
        fn find(btf: &btf_rs::Btf, st: &btf_rs::Struct, member: &str, base: u32) -> Option<u32> {
            for m in &st.members {
                let name = btf.resolve_name(m).unwrap_or_default();
                let bits = base + m.bit_offset();
                if name == member {
                    return Some(bits);
                }
                if name.is_empty() {
                    let inner = btf.type_iter(m).take(16).find_map(|t| match t {
                        Type::Struct(s) | Type::Union(s) => Some(s),
                        _ => None,
                    });
                    if let Some(found) = inner.and_then(|s| find(btf, &s, member, bits)) {
                        return Some(found);
                    }
                }
            }
            None
        }
        let st = btf
            .resolve_types_by_name(name)
            .ok()?
            .into_iter()
            .find_map(|t| match t {
                Type::Struct(s) => Some(s),
                _ => None,
            })?;
        find(btf, &st, member, 0).map(|bits| bits / 8)
    }

    /// This reader and btf-rs agree on the running kernel's BTF: every
    /// offset, struct size and the cgroup controllers' enum.
    #[test]
    fn agrees_with_btf_rs_on_this_kernel() {
        if !listns_skip::require(
            std::path::Path::new(VMLINUX).exists(),
            "no /sys/kernel/btf/vmlinux: this kernel has no BTF",
        ) {
            return;
        }
        let bytes = std::fs::read(VMLINUX).unwrap();
        let ours = Btf::parse(&bytes).unwrap();
        let theirs = btf_rs::Btf::from_bytes(&bytes).unwrap();
        let mut found = 0;
        for &(st, member) in MEMBERS {
            let (a, b) = (
                ours.member_offset(st, member),
                btf_rs_offset(&theirs, st, member),
            );
            assert_eq!(a, b, "{st}.{member}");
            found += usize::from(a.is_some());
        }
        assert!(found >= MEMBERS.len() - 4, "only {found} members found");
        for st in ["task_struct", "upid", "ns_common", "signal_struct"] {
            let theirs = theirs.resolve_types_by_name(st).unwrap();
            let size = theirs.iter().find_map(|t| match t {
                btf_rs::Type::Struct(s) => Some(s.size() as u32),
                _ => None,
            });
            assert_eq!(ours.struct_size(st), size, "sizeof {st}");
        }
        let ids = ours.enum_values("cgroup_subsys_id");
        assert!(ids.iter().any(|(n, _)| n == "memory_cgrp_id"), "{ids:?}");
        assert_eq!(ours.member_offset("task_struct", "no_such_member"), None);
        assert_eq!(ours.member_offset("no_such_struct", "x"), None);
    }

    #[test]
    fn an_unknown_kind_or_a_cut_type_is_an_error_not_a_panic() {
        let seed: &[u8] = include_bytes!("../../../fuzz/corpus/btf/kernel-structs.btf");
        assert!(Btf::parse(seed).is_ok());
        // The first type's info word: kind 31.
        let hdr = u32::from_le_bytes(seed[4..8].try_into().unwrap()) as usize;
        let types = hdr + u32::from_le_bytes(seed[8..12].try_into().unwrap()) as usize;
        let mut bad = seed.to_vec();
        bad[types + 7] = 0x1f;
        let err = Btf::parse(&bad).err().unwrap();
        assert!(err.contains("unknown kind 31"), "{err}");
        // Every cut of the file parses or fails, never panics.
        for n in 0..seed.len() {
            let _ = Btf::parse(&seed[..n]);
        }
    }
}
