//! Everything of the library that the ESP32-S3 firmware calls: provisioned settings,
//! sensors, `device::open` (spool, held rows, time record), the sampling loop and the
//! upload loop with the broker client, over an HTTP connection whose answers come from
//! the command line (so the optimiser keeps every path). Built for its size only.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};

use embedded_svc::http::client::Connection;
use embedded_svc::http::{Headers, Method, Status};
use embedded_svc::io::{ErrorKind, ErrorType, Read, Write};
use sensorlake::batch::Value;
use sensorlake::clock::SystemClock;
use sensorlake::device::{self, DeviceConfig};
use sensorlake::provision::Provisioning;
use sensorlake::schema::Channel;
use sensorlake::sensor::{SensorError, SensorSource, Sensors};
use sensorlake::storage::StdStorage;
use sensorlake::timebase::FileTimeStore;
use sensorlake::url_source::AnyUrlSource;

/// A sensor whose readings come from the command line.
struct ArgSensor(f32);

impl SensorSource for ArgSensor {
    fn name(&self) -> &str {
        "arg"
    }
    fn channels(&self) -> Vec<Channel> {
        vec![Channel::f32("t").unit("degC")]
    }
    fn read(&mut self, out: &mut [Value]) -> Result<(), SensorError> {
        self.0 = black_box(self.0 + 0.5);
        if self.0.is_nan() {
            return Err(SensorError("nan".into()));
        }
        out[0] = Value::F32(self.0);
        Ok(())
    }
}

#[derive(Default)]
struct Head {
    status: u16,
    date: String,
}

impl Status for Head {
    fn status(&self) -> u16 {
        self.status
    }
    fn status_message(&self) -> Option<&str> {
        None
    }
}

impl Headers for Head {
    fn header(&self, name: &str) -> Option<&str> {
        name.eq_ignore_ascii_case("date")
            .then_some(self.date.as_str())
    }
}

#[derive(Default)]
struct Body {
    bytes: Vec<u8>,
    at: usize,
}

impl ErrorType for Body {
    type Error = ErrorKind;
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        let n = buf.len().min(self.bytes.len() - self.at);
        buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

impl Write for Body {
    fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

/// A connection answering what the command line says.
struct Probe {
    answer: String,
    head: Head,
    body: Body,
    in_request: bool,
    sent: usize,
}

impl ErrorType for Probe {
    type Error = ErrorKind;
}

impl Status for Probe {
    fn status(&self) -> u16 {
        self.head.status
    }
    fn status_message(&self) -> Option<&str> {
        None
    }
}

impl Headers for Probe {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.header(name)
    }
}

impl Read for Probe {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        self.body.read(buf)
    }
}

impl Write for Probe {
    fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        self.sent += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

impl Connection for Probe {
    type Headers = Head;
    type Read = Body;
    type RawConnectionError = ErrorKind;
    type RawConnection = Body;

    fn initiate_request<'a>(
        &'a mut self,
        _method: Method,
        uri: &'a str,
        headers: &'a [(&'a str, &'a str)],
    ) -> Result<(), ErrorKind> {
        if black_box(uri.len() + headers.len()) == 0 {
            return Err(ErrorKind::ConnectionRefused);
        }
        self.in_request = true;
        Ok(())
    }
    fn is_request_initiated(&self) -> bool {
        self.in_request
    }
    fn initiate_response(&mut self) -> Result<(), ErrorKind> {
        self.in_request = false;
        let (status, rest) = self.answer.split_once(' ').unwrap_or(("500", ""));
        self.head = Head {
            status: status.parse().unwrap_or(500),
            date: "Fri, 01 Mar 2024 08:00:00 GMT".into(),
        };
        self.body = Body {
            bytes: rest.as_bytes().to_vec(),
            at: 0,
        };
        Ok(())
    }
    fn is_response_initiated(&self) -> bool {
        !self.in_request
    }
    fn split(&mut self) -> (&Head, &mut Body) {
        (&self.head, &mut self.body)
    }
    fn raw_connection(&mut self) -> Result<&mut Body, ErrorKind> {
        Err(ErrorKind::Unsupported)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.into());
    let token = arg(3, "sl1.probe.EXAMPLEtokenEXAMPLEtokenEXAMPLE");
    let settings = Provisioning::new(
        &arg(1, "lab"),
        "",
        "probe",
        &arg(2, "https://broker.example"),
        &token,
    )
    .expect("settings");
    let sensors = Sensors::new(vec![Box::new(ArgSensor(args.len() as f32))]).expect("sensors");
    let mut config = DeviceConfig::new(settings.device_id.clone(), settings.key_template());
    config.sample_period = settings.sample_period;
    let (mut sampler, mut uploads) = device::open(
        StdStorage::new(arg(4, "/spool")),
        FileTimeStore::new(arg(5, "/nvs")),
        sensors,
        AnyUrlSource::Broker(settings.broker_client()),
        &config,
    )
    .expect("open");
    sampler
        .sync_signal()
        .post(black_box(1_709_280_000_000_000), 0);
    let stop = AtomicBool::new(false);
    let start = std::time::Instant::now();
    let limit = black_box(args.len() + 2);
    let mut feeds = 0;
    sampler.run(|| start.elapsed().as_micros() as i64, &stop, &mut || {
        feeds += 1;
        if feeds > limit {
            stop.store(true, Ordering::SeqCst);
        }
    });
    stop.store(false, Ordering::SeqCst);
    let answer = arg(6, "200 {}");
    feeds = 0;
    uploads.run(
        || {
            Ok::<_, String>(Probe {
                answer: answer.clone(),
                head: Head::default(),
                body: Body::default(),
                in_request: false,
                sent: 0,
            })
        },
        &SystemClock,
        &stop,
        &mut || {
            feeds += 1;
            if feeds > limit {
                stop.store(true, Ordering::SeqCst);
            }
        },
    );
    println!("{:?}", uploads.sender().uploader().counters());
}
