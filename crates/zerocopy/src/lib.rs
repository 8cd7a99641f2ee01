//! Sealed segments in pages the kernel can send without copying them.
//!
//! A sealed segment is written once and then sent to every viewer of it. Sent from
//! an ordinary buffer, each `writev` copies the segment into the kernel again, once
//! per viewer; nginx avoids that with `sendfile` from its files. [`seal`] puts a
//! segment's bytes into a sealed memfd (no size or write changes possible after
//! it, `F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW`) mapped read-only, and returns
//! them as ordinary [`Bytes`]: everything above — the hub, the egress door's checks,
//! hyper's response writing — sees the same bytes as before. The server's HTTP
//! socket recognises a slice of such a mapping ([`first_sealed`]) and hands the
//! kernel the memfd's pages with [`send_sealed`] (`sendfile(2)`) instead of
//! copying them; the response head before it goes with [`send_more`].
//!
//! Why this is safe for isolation: the bytes sent are the pages of the very memfd
//! the door's checked object maps, at the slice's own offset; the seals make them
//! immutable, and a page the socket still references after the object is dropped
//! stays that memfd's page (page-cache pages are not reused while referenced), so
//! no later allocation can change bytes in flight — unlike `vmsplice` or
//! `MSG_ZEROCOPY` from heap memory.
//!
//! This is the workspace's one crate with `unsafe` code (the others forbid it):
//! mapping a file is unsafe in Rust's terms whatever crate does it, since another
//! process could change the file — a sealed memfd nobody else holds cannot. Written
//! with `libc` because no well-kept crate offers sealed-memfd-backed `Bytes`, nor
//! `sendfile` under hyper. Where memfds are unavailable, [`seal`] returns the
//! bytes as they are and sending copies as before.

use bytes::Bytes;
use std::collections::BTreeMap;
use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::RwLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Smaller objects are not worth a mapping (a page each, six system calls).
pub const MIN_LEN: usize = 4096;

/// At most this many segments are held in memfds at once: each holds a descriptor
/// (counted against the open-file limit, like connections) and a mapping (against
/// `vm.max_map_count`). Beyond it, [`seal`] keeps the bytes on the heap.
static LIMIT: AtomicUsize = AtomicUsize::new(16_384);

/// Sets how many segments may be held in memfds at once (see [`seal`]).
pub fn set_limit(segments: usize) {
    LIMIT.store(segments, Ordering::Relaxed);
}

/// Start address of each live mapping -> (length, memfd).
static MAPPINGS: RwLock<BTreeMap<usize, (usize, RawFd)>> = RwLock::new(BTreeMap::new());

/// A read-only shared mapping of a sealed memfd; unmapped (and forgotten by
/// [`find`]) when the last `Bytes` of it is dropped.
struct Mapping {
    ptr: *const u8,
    len: usize,
    fd: OwnedFd,
}

// SAFETY: the mapping is read-only and immutable (sealed) for its whole life.
unsafe impl Send for Mapping {}
// SAFETY: as for Send: nothing can write through or to it.
unsafe impl Sync for Mapping {}

impl AsRef<[u8]> for Mapping {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes until drop.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        MAPPINGS
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(self.ptr as usize));
        // SAFETY: unmapping what `seal` mapped; no slice of it outlives the owner.
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
    }
}

/// `bytes`, held in a sealed memfd the kernel can send from (see the module
/// docs); `bytes` itself when it is small, when [`set_limit`] segments are held
/// already, or when a memfd cannot be made.
pub fn seal(bytes: Bytes) -> Bytes {
    if bytes.len() < MIN_LEN || held() >= LIMIT.load(Ordering::Relaxed) {
        return bytes;
    }
    match map(&bytes) {
        Ok(m) => Bytes::from_owner(m),
        Err(_) => bytes,
    }
}

fn map(data: &[u8]) -> std::io::Result<Mapping> {
    let os = |r: libc::c_int| {
        if r < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(r)
        }
    };
    // SAFETY: plain system calls on a descriptor this function owns.
    unsafe {
        let fd = os(libc::memfd_create(
            c"hearth-segment".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        ))?;
        let fd = OwnedFd::from_raw_fd(fd);
        let mut file = std::fs::File::from(fd);
        std::io::Write::write_all(&mut file, data)?;
        let fd = OwnedFd::from(file);
        os(libc::fcntl(
            fd.as_raw_fd(),
            libc::F_ADD_SEALS,
            libc::F_SEAL_WRITE | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL,
        ))?;
        let ptr = libc::mmap(
            std::ptr::null_mut(),
            data.len(),
            libc::PROT_READ,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            0,
        );
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let m = Mapping {
            ptr: ptr as *const u8,
            len: data.len(),
            fd,
        };
        MAPPINGS
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(m.ptr as usize, (m.len, m.fd.as_raw_fd()));
        Ok(m)
    }
}

/// Segments held in memfds now.
pub fn held() -> usize {
    MAPPINGS.read().unwrap_or_else(|e| e.into_inner()).len()
}

/// The memfd and offset behind `slice`, if it lies inside one mapping made by
/// [`seal`]. The descriptor stays valid as long as `slice` is borrowed (the
/// mapping's owner outlives its slices).
fn find(slice: &[u8]) -> Option<(RawFd, usize)> {
    if slice.is_empty() {
        return None;
    }
    let at = slice.as_ptr() as usize;
    let maps = MAPPINGS.read().unwrap_or_else(|e| e.into_inner());
    let (&start, &(len, fd)) = maps.range(..=at).next_back()?;
    (at + slice.len() <= start + len).then_some((fd, at - start))
}

/// The index of the first of `bufs` that lies in a sealed mapping.
pub fn first_sealed(bufs: &[IoSlice<'_>]) -> Option<usize> {
    bufs.iter().position(|b| find(b).is_some())
}

/// Sends `slice` (or its start) to the socket `sock` with `sendfile(2)` from the
/// memfd it maps; `None` if `slice` is not in a sealed mapping. Non-blocking as
/// the socket is: `WouldBlock` when it is full.
pub fn send_sealed(sock: BorrowedFd<'_>, slice: &[u8]) -> Option<std::io::Result<usize>> {
    let (file, offset) = find(slice)?;
    let mut off = offset as libc::off_t;
    // SAFETY: `file` is the memfd behind `slice`, open while `slice` is borrowed;
    // `off` is a valid pointer for the call.
    let n = unsafe { libc::sendfile(sock.as_raw_fd(), file, &mut off, slice.len()) };
    Some(if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    })
}

/// Sends `bufs` to the socket `sock` with `MSG_MORE` (the kernel holds a partial
/// packet for what follows, as `TCP_CORK` would). Non-blocking as the socket is.
pub fn send_more(sock: BorrowedFd<'_>, bufs: &[IoSlice<'_>]) -> std::io::Result<usize> {
    // SAFETY: an all-zero msghdr is valid (no name, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // `IoSlice` is ABI-compatible with `iovec` on Unix (std guarantees it).
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len() as _;
    // SAFETY: `msg` points at `bufs`, which outlive the call; the kernel only reads them.
    let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_MORE | libc::MSG_NOSIGNAL) };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_bytes_are_the_same_bytes_and_are_found_by_any_slice() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7) as u8).collect();
        let sealed = seal(Bytes::from(data.clone()));
        assert_eq!(&sealed[..], &data[..]);
        let (fd, off) = find(&sealed).expect("mapped");
        assert_eq!(off, 0);
        let (fd2, off2) = find(&sealed[1000..5000]).unwrap();
        assert_eq!((fd2, off2), (fd, 1000));
        // The memfd holds the bytes, and cannot be written any more.
        let mut back = vec![0u8; 4000];
        // SAFETY: reading into a buffer of the given size.
        let n = unsafe { libc::pread(fd, back.as_mut_ptr().cast(), back.len(), 1000) };
        assert_eq!(n, 4000);
        assert_eq!(&back[..], &data[1000..5000]);
        // SAFETY: an attempted write to a sealed memfd.
        let w = unsafe { libc::pwrite(fd, [1u8].as_ptr().cast(), 1, 0) };
        assert_eq!(w, -1, "sealed against writes");
        // Small objects and ordinary memory are not mapped.
        assert!(find(&data).is_none());
        assert!(find(&seal(Bytes::from_static(b"small"))).is_none());
        // Dropping the last reference forgets the mapping.
        let clone = sealed.slice(10..20);
        let at = sealed.as_ptr() as usize;
        drop(sealed);
        assert!(find(&clone).is_some());
        drop(clone);
        let maps = MAPPINGS.read().unwrap();
        assert!(!maps.contains_key(&at));
    }

    #[test]
    fn a_sealed_slice_reaches_a_socket_with_sendfile_and_a_head_with_send_more() {
        use std::io::Read;
        use std::os::fd::AsFd;
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 13 + 5) as u8).collect();
        let sealed = seal(Bytes::from(data.clone()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let tx = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut rx, _) = listener.accept().unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            rx.read_to_end(&mut got).unwrap();
            got
        });
        let head = [IoSlice::new(b"HEAD "), IoSlice::new(b"line\n")];
        assert_eq!(first_sealed(&head), None);
        assert_eq!(send_more(tx.as_fd(), &head).unwrap(), 10);
        // A slice from the middle, sent until done (a blocking socket here).
        let part = &sealed[1234..250_000];
        assert_eq!(
            first_sealed(&[IoSlice::new(b"x"), IoSlice::new(part)]),
            Some(1)
        );
        let mut sent = 0;
        while sent < part.len() {
            sent += send_sealed(tx.as_fd(), &part[sent..]).unwrap().unwrap();
        }
        assert!(send_sealed(tx.as_fd(), &data[..10]).is_none(), "not sealed");
        drop(sealed); // the bytes in flight are the memfd's pages, not this mapping
        drop(tx);
        let got = reader.join().unwrap();
        assert_eq!(&got[..10], b"HEAD line\n");
        assert_eq!(&got[10..], &data[1234..250_000]);
    }
}
