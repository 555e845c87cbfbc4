//! A slowloris of 500 idle connections does not stop a real client from sending.

use std::net::TcpStream;

use cli::Exit;
use workspace_tests::{Client, Scenario, job, run_job};

#[test]
fn five_hundred_idle_connections_do_not_block_a_real_client() {
    let scenario = Scenario::new("starttls", &[]).with_login();
    let server = scenario.start_server();
    // Each idle connection has read the greeting and then says nothing.
    let idle: Vec<TcpStream> = (0..500)
        .map(|_| TcpStream::connect(server.addr()).expect("an idle connection"))
        .collect();
    let job = job(&scenario, &server).expect("job");
    let run = run_job(Client::RAW, &job, Some(&server));
    assert_eq!(run.exit(), Exit::Sent, "{}", run.text);
    assert_eq!(run.stored.len(), 1);
    drop(idle);
}
