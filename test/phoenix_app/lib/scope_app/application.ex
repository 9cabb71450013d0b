defmodule ScopeApp.Application do
  @moduledoc false
  use Application

  @impl true
  def start(_type, _args) do
    children = [
      {Phoenix.PubSub, name: ScopeApp.PubSub},
      ScopeApp.Cart,
      ScopeAppWeb.Endpoint
    ]

    with {:ok, sup} <-
           Supervisor.start_link(children, strategy: :one_for_one, name: ScopeApp.Supervisor) do
      start_elixir_scope()
      {:ok, sup}
    end
  end

  # What an application that uses ElixirScope does in its application.ex.
  defp start_elixir_scope do
    case Application.fetch_env(:scope_app, :elixir_scope) do
      {:ok, opts} ->
        # {:partial, not_started} when an optional part (the MCP server) could not
        # start: tracing runs anyway, and ElixirScope logged why.
        case ElixirScope.setup(opts) do
          :ok -> :ok
          {:partial, _not_started} -> :ok
        end

        if Application.get_env(:scope_app, :trace_cart, false),
          do: :ok = ElixirScope.trace_genserver(ScopeApp.Cart)

      :error ->
        :ok
    end
  end
end
