//! Reading an HTTP response body with a limit: the one helper every client of the
//! library (uploader, broker client, credentials provider) and of the CLI uses, so no
//! answer can make a reader allocate without bound.

use embedded_svc::io::Read;

/// A body read up to a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// The first bytes of the body, at most the limit.
    pub bytes: Vec<u8>,
    /// Whether the body was longer than the limit (the rest was drained or left unread,
    /// as asked).
    pub truncated: bool,
}

/// What to do with the bytes beyond the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beyond {
    /// Read and discard them, so the connection can be reused (small error bodies).
    Drain,
    /// Stop reading: the caller refuses the answer anyway.
    Stop,
}

/// Reads `reader` to its end, keeping at most `limit` bytes.
pub fn read_limited<R: Read>(
    reader: &mut R,
    limit: usize,
    beyond: Beyond,
) -> Result<Body, R::Error> {
    let mut bytes = Vec::new();
    let mut truncated = false;
    let mut buf = [0u8; 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let keep = n.min(limit - bytes.len());
        bytes.extend_from_slice(&buf[..keep]);
        if keep < n {
            truncated = true;
            if beyond == Beyond::Stop {
                break;
            }
        }
    }
    Ok(Body { bytes, truncated })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out `data` in chunks of `chunk` bytes and counts its reads.
    struct Chunks<'a> {
        data: &'a [u8],
        chunk: usize,
        reads: usize,
    }

    impl embedded_svc::io::ErrorType for Chunks<'_> {
        type Error = core::convert::Infallible;
    }

    impl Read for Chunks<'_> {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
            self.reads += 1;
            let n = self.data.len().min(self.chunk).min(buf.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn keeps_at_most_the_limit_and_says_when_there_was_more() {
        let data: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        for (limit, chunk) in [
            (5000, 700),
            (4999, 700),
            (4096, 1),
            (0, 300),
            (10_000, 1024),
        ] {
            let mut r = Chunks {
                data: &data,
                chunk,
                reads: 0,
            };
            let body = read_limited(&mut r, limit, Beyond::Drain).unwrap();
            assert_eq!(body.bytes, data[..limit.min(data.len())], "{limit}/{chunk}");
            assert_eq!(body.truncated, limit < data.len(), "{limit}/{chunk}");
            assert!(r.data.is_empty(), "drained");
        }
        let mut r = Chunks {
            data: &data,
            chunk: 100,
            reads: 0,
        };
        let body = read_limited(&mut r, 250, Beyond::Stop).unwrap();
        assert_eq!((body.bytes.len(), body.truncated), (250, true));
        assert_eq!(r.reads, 3, "stops at the first read past the limit");
    }
}
