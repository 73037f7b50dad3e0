//! `listns(2)` (Linux 6.19+, syscall 470 on x86_64): every namespace id the
//! kernel has, including ones created before the tracer started and held
//! where no scan looks. This kernel may not have it; ENOSYS says so.

use nix::errno::Errno;

use crate::{ns::NsType, sys};

pub use crate::sys::listns::NsIdReq;

impl NsIdReq {
    /// The request for the page after `last` of namespaces of type `ty`.
    pub fn page(ty: Option<NsType>, last: u64) -> NsIdReq {
        NsIdReq {
            size: std::mem::size_of::<NsIdReq>() as u32,
            ns_id: last,
            ns_type: ty.map_or(0, NsType::clone_flag),
            ..Default::default()
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ListnsError {
    #[error("this kernel has no listns() (Linux 6.19+)")]
    Unsupported,
    #[error("listns(): {0}")]
    Os(String),
    /// ENOENT: nothing after the id the request starts from (how the
    /// kernel ends a listing whose last page was full).
    #[error("listns(): no namespace after the requested id")]
    NoMore,
}

/// Calls the syscall for one page.
fn call(req: &NsIdReq, buf: &mut [u64]) -> Result<usize, ListnsError> {
    sys::listns::listns(req, buf).map_err(|e| match e {
        Errno::ENOSYS => ListnsError::Unsupported,
        Errno::ENOENT => ListnsError::NoMore,
        e => ListnsError::Os(std::io::Error::from(e).to_string()),
    })
}

/// All ids of type `ty`, paging with `fetch` (the syscall, or a fake in tests).
pub fn collect(
    ty: Option<NsType>,
    page: usize,
    mut fetch: impl FnMut(&NsIdReq, &mut [u64]) -> Result<usize, ListnsError>,
) -> Result<Vec<u64>, ListnsError> {
    let mut out = Vec::new();
    let mut buf = vec![0u64; page.max(1)];
    let mut last = 0;
    loop {
        let n = match fetch(&NsIdReq::page(ty, last), &mut buf) {
            Ok(n) => n.min(buf.len()),
            // A full page was the last one.
            Err(ListnsError::NoMore) if last != 0 => return Ok(out),
            Err(e) => return Err(e),
        };
        out.extend_from_slice(&buf[..n]);
        match buf[..n].last() {
            Some(&id) if n == buf.len() && id > last => last = id,
            _ => return Ok(out),
        }
    }
}

/// Every namespace id of each type that the kernel lists.
pub fn list_all() -> Result<Vec<(NsType, u64)>, ListnsError> {
    let mut out = Vec::new();
    for ty in NsType::ALL {
        out.extend(collect(Some(ty), 256, call)?.into_iter().map(|id| (ty, id)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_layout_and_fields() {
        let r = NsIdReq::page(Some(NsType::Net), 77);
        assert_eq!(r.size, 32);
        assert_eq!(r.ns_id, 77);
        assert_eq!(r.ns_type, 0x4000_0000);
        assert_eq!((r.spare, r.spare2, r.user_ns_id), (0, 0, 0));
        assert_eq!(NsIdReq::page(None, 0).ns_type, 0);
    }

    #[test]
    fn pages_until_a_short_page() {
        let ids: Vec<u64> = (1..=10).collect();
        let mut calls = Vec::new();
        let got = collect(Some(NsType::Uts), 4, |req, buf| {
            calls.push(req.ns_id);
            let rest: Vec<u64> = ids
                .iter()
                .copied()
                .filter(|&i| i > req.ns_id)
                .take(buf.len())
                .collect();
            buf[..rest.len()].copy_from_slice(&rest);
            Ok(rest.len())
        })
        .unwrap();
        assert_eq!(got, ids);
        assert_eq!(calls, vec![0, 4, 8]);
    }

    #[test]
    fn a_full_last_page_ends_at_enoent() {
        // The kernel answers ENOENT when nothing follows the id a request
        // starts from: with 8 ids in pages of 4, the third call.
        let ids: Vec<u64> = (1..=8).collect();
        let mut calls = 0;
        let got = collect(None, 4, |req, buf| {
            calls += 1;
            let rest: Vec<u64> = ids.iter().copied().filter(|&i| i > req.ns_id).collect();
            if rest.is_empty() && req.ns_id != 0 {
                return Err(ListnsError::NoMore);
            }
            let n = rest.len().min(buf.len());
            buf[..n].copy_from_slice(&rest[..n]);
            Ok(n)
        })
        .unwrap();
        assert_eq!(got, ids);
        assert_eq!(calls, 3);
    }

    #[test]
    fn enosys_is_unsupported() {
        assert_eq!(
            collect(None, 8, |_, _| Err(ListnsError::Unsupported)),
            Err(ListnsError::Unsupported)
        );
    }

    #[test]
    fn real_kernel_answers_or_says_unsupported() {
        // On kernels before 6.19 this must be Unsupported, never a crash or a
        // bogus list; on 6.19+ our own netns must be among the ids.
        match list_all() {
            Err(ListnsError::Unsupported) => {}
            Ok(ids) => {
                // Our own netns's id, asked of the kernel by the skip
                // crate's raw ioctl, not by listns's.
                let own = listns_skip::ns_id("/proc/self/ns/net").expect("NS_GET_ID (6.18+)");
                assert!(ids.contains(&(NsType::Net, own)));
            }
            Err(e) => panic!("{e}"),
        }
    }
}
