# A real Phoenix 1.7 / LiveView 0.20 / Bandit application for ElixirScope's integration tests
# and benchmarks, built from the sources in ../shared/phoenix (hex.pm is unreachable here).
# `make phoenix-app` unpacks those sources and compiles this project; the tests and benches load
# it in a peer node (ElixirScope.Test.PhoenixApp) and start it on a free port. ElixirScope is a
# dependency as in any application that uses it, and is started from application.ex when the
# `:scope_app, :elixir_scope` environment names options.
Code.eval_file(Path.expand("../../../shared/phoenix/offline_hex_scm.exs", __DIR__))

defmodule ScopeApp.MixProject do
  use Mix.Project

  # Where `make phoenix-deps` unpacked the Phoenix stack (the Makefile passes it).
  @deps System.get_env("PHOENIX_DEPS") || Path.expand("../../build/phoenix-1.7.21-deps", __DIR__)

  def project do
    [
      app: :scope_app,
      version: "0.1.0",
      elixir: "~> 1.14",
      deps: deps(),
      consolidate_protocols: false
    ]
  end

  def application do
    [mod: {ScopeApp.Application, []}, extra_applications: [:logger, :inets]]
  end

  defp deps do
    [{:elixir_scope, path: "../.."}] ++ phoenix_deps()
  end

  defp phoenix_deps do
    for name <-
          ~w(phoenix phoenix_live_view phoenix_pubsub phoenix_html phoenix_template bandit
             thousand_island hpax plug plug_crypto mime telemetry websock websock_adapter
             jason castore)a,
        do: {name, path: Path.join(@deps, Atom.to_string(name)), override: true}
  end
end
