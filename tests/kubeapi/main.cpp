// granary-kubeapi: the test API server as a process, for tests that run the operator as a real
// binary. Prints `event=kubeapi_listening url=…` once serving; writes a kubeconfig pointing at
// itself when asked; stops on SIGTERM/SIGINT.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <iterator>

#include "tests/kubeapi/kubeapi_server.h"

int main(int argc, char** argv) {
  CLI::App app{"Kubernetes API test server"};
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string token;
  std::string kubeconfig;
  int bookmark_ms = 1000;
  std::string tls_cert, tls_key, client_ca, ca;
  app.add_option("--host", host, "listen address");
  app.add_option("--port", port, "listen port (0 picks a free one)");
  app.add_option("--token", token, "bearer token every request must carry");
  app.add_option("--kubeconfig", kubeconfig, "write a kubeconfig for this server here");
  app.add_option("--bookmark-interval-ms", bookmark_ms, "BOOKMARK period on watches");
  app.add_option("--tls-cert", tls_cert, "serve HTTPS with this certificate chain (PEM file)")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-key", tls_key, "private key of --tls-cert (PEM file)")
      ->check(CLI::ExistingFile);
  app.add_option("--client-ca", client_ca, "accept client certificates signed by this CA")
      ->check(CLI::ExistingFile);
  app.add_option("--ca", ca, "CA file the written kubeconfig trusts (else it skips verification)")
      ->check(CLI::ExistingFile);
  CLI11_PARSE(app, argc, argv);
  auto slurp = [](const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };

  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before any thread starts

  granary::kubeapi::ServerOptions options;
  options.listen_host = host;
  options.port = port;
  options.bearer_token = token;
  options.bookmark_interval_ms = bookmark_ms;
  if (!tls_cert.empty()) {
    options.tls_cert_pem = slurp(tls_cert);
    options.tls_key_pem = slurp(tls_key);
  }
  if (!client_ca.empty()) options.client_ca_pem = slurp(client_ca);
  auto server = granary::kubeapi::KubeApiServer::Start(options);
  if (!server.ok()) {
    std::cerr << "event=kubeapi_failed error=\"" << server.status().ToString() << "\"\n";
    return 1;
  }
  if (!kubeconfig.empty()) {
    std::ofstream out(kubeconfig);
    out << "apiVersion: v1\nkind: Config\ncurrent-context: test\n"
        << "clusters:\n- name: test\n  cluster:\n    server: " << (*server)->url() << "\n";
    if (!tls_cert.empty()) {
      if (ca.empty()) {
        out << "    insecure-skip-tls-verify: true\n";
      } else {
        out << "    certificate-authority: " << ca << "\n";
      }
    }
    out << "users:\n- name: test\n  user:\n    token: \"" << token << "\"\n"
        << "contexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n"
        << "    namespace: default\n";
  }
  std::cout << "event=kubeapi_listening url=" << (*server)->url() << std::endl;
  int sig = 0;
  sigwait(&set, &sig);
  (*server)->Stop();
  return 0;
}
