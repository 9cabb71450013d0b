defmodule ElixirScope.Web.Listener do
  @moduledoc false
  # What ElixirScope's two HTTP servers (the MCP server and the web UI) share: the
  # options of a local listener — `:port`, `:bind`, `:token`, `:allowed_hosts`,
  # `:allowed_origins` — checked the same way, with the same rule (beyond loopback only
  # with a token); a standalone `:inets` httpd started on them; and the URL it answers
  # at. Each server checks its own other options and writes its own responses.

  @keys [:port, :bind, :token, :allowed_hosts, :allowed_origins]

  @doc false
  def keys, do: @keys

  @doc false
  # Checks one option of a server whose options read as `label` ("mcp", "ui") in
  # errors. Returns :ok, or :unknown for a key that is not a listener option.
  def check!(_label, {:port, v}) when is_integer(v) and v in 0..65_535, do: :ok
  def check!(label, {:port, v}), do: bad(label, :port, "an integer in 0..65535", v)
  def check!(_label, {:bind, v}) when is_binary(v) or is_tuple(v), do: :ok
  def check!(label, {:bind, v}), do: bad(label, :bind, "an IP address string or tuple", v)
  def check!(_label, {:token, nil}), do: :ok

  def check!(label, {:token, v}) when is_binary(v) and byte_size(v) >= 16 do
    if v =~ ~r/^[\x21-\x7e]+$/,
      do: :ok,
      else: bad(label, :token, "printable ASCII without spaces", "(hidden)")
  end

  def check!(label, {:token, _}),
    do: bad(label, :token, "nil or a string of at least 16 characters", "(hidden)")

  def check!(label, {key, v}) when key in [:allowed_hosts, :allowed_origins] do
    if is_list(v) and Enum.all?(v, &(is_binary(&1) and &1 != "")),
      do: :ok,
      else: bad(label, key, "a list of strings", v)
  end

  def check!(_label, _option), do: :unknown

  @doc false
  # The checked options as a map, `:bind` resolved to an address tuple; raises when
  # the address is beyond loopback and there is no token.
  def finish!(label, config) do
    config = config |> Map.new() |> Map.update!(:bind, &address!(label, &1))

    if config.token == nil and not loopback?(config.bind) do
      raise ArgumentError,
            "#{label}: binding to #{:inet.ntoa(config.bind)} (beyond loopback) needs a :token"
    end

    config
  end

  @doc false
  def bad(label, key, expected, v),
    do:
      raise(
        ArgumentError,
        "#{label} option #{inspect(key)} must be #{expected}, got: #{inspect(v)}"
      )

  defp address!(_label, "localhost"), do: {127, 0, 0, 1}

  defp address!(label, text) when is_binary(text) do
    case :inet.parse_strict_address(String.to_charlist(text)) do
      {:ok, address} -> address
      {:error, _} -> bad(label, :bind, "an IP address", text)
    end
  end

  defp address!(label, tuple) do
    if :inet.is_ip_address(tuple), do: tuple, else: bad(label, :bind, "an IP address", tuple)
  end

  @doc false
  def loopback?({127, _, _, _}), do: true
  def loopback?({0, 0, 0, 0, 0, 0, 0, 1}), do: true
  def loopback?(_), do: false

  @doc false
  # What a server's init does: starts the httpd (below) and logs where it answers
  # ("ElixirScope: web UI at http://127.0.0.1:4048/"). Returns {:ok, pid, port} or
  # {:error, reason}; raises when :inets is not there.
  def open(config, what, path, handler, modules, httpd) do
    unless Code.ensure_loaded?(:httpd) do
      raise "OTP's :inets is not available: a release needs it in its applications"
    end

    with {:ok, pid, port} <- start(config, handler, modules, httpd) do
      require Logger
      Logger.info("ElixirScope: #{what} at #{base_url(config.bind, port)}#{path}")
      {:ok, pid, port}
    end
  end

  @doc false
  # Starts a standalone httpd on `config.port` (0: a free one) and `config.bind`,
  # linked to the caller so that it never outlives it, running `modules` with
  # `{tag, handler_config}` in its configuration (read back with
  # `:httpd_util.lookup/2`; a function of the port is called with the port it gets).
  # `httpd` are further httpd options. Returns `{:ok, pid, port}` or
  # `{:error, reason}`, with the socket's posix reason (:eaddrinuse, :eacces, ...)
  # when it is one: that is what tells a user what to do.
  #
  # A standalone httpd cannot report the port it got, so port 0 is resolved here: a
  # free port is taken and released just before httpd binds it, retried if another
  # program wins it meanwhile.
  def start(config, {tag, handler_config}, modules, httpd, tries \\ 5) do
    port = if config.port == 0, do: free_port(config.bind), else: config.port

    httpd_config =
      [
        port: port,
        bind_address: config.bind,
        ipfamily: if(tuple_size(config.bind) == 8, do: :inet6, else: :inet),
        server_root: String.to_charlist(System.tmp_dir!()),
        document_root: String.to_charlist(System.tmp_dir!()),
        modules: modules,
        max_header_size: 16_384,
        max_uri_size: 4_096,
        max_clients: 64,
        keep_alive_timeout: 60,
        minimum_bytes_per_second: 100
      ]
      |> Keyword.merge(httpd)
      |> Keyword.put(
        tag,
        if(is_function(handler_config, 1), do: handler_config.(port), else: handler_config)
      )

    case :inets.start(:httpd, httpd_config, :stand_alone) do
      {:ok, pid} ->
        {:ok, pid, port}

      {:error, _} when config.port == 0 and tries > 1 ->
        start(config, {tag, handler_config}, modules, httpd, tries - 1)

      {:error, reason} ->
        {:error, listen_error(reason)}
    end
  end

  # httpd nests the socket's error in its supervisors' start errors.
  defp listen_error({:listen, posix}) when is_atom(posix), do: posix

  defp listen_error(reason) when is_tuple(reason) do
    reason
    |> Tuple.to_list()
    |> Enum.find_value(reason, fn part ->
      case listen_error(part) do
        ^part -> nil
        posix -> posix
      end
    end)
  end

  defp listen_error(reason), do: reason

  defp free_port(bind) do
    {:ok, socket} = :gen_tcp.listen(0, ip: bind, reuseaddr: true)
    {:ok, port} = :inet.port(socket)
    :gen_tcp.close(socket)
    port
  end

  @doc false
  def stop(httpd) do
    :inets.stop(:stand_alone, httpd)
  catch
    _, _ -> :ok
  end

  @doc false
  # "http://127.0.0.1:4047" for a server bound to `bind` on `port` (a wildcard bind is
  # reached through loopback).
  def base_url(bind, port) do
    host =
      case bind do
        {0, 0, 0, 0} -> "127.0.0.1"
        {0, 0, 0, 0, 0, 0, 0, 0} -> "[::1]"
        {_, _, _, _} -> List.to_string(:inet.ntoa(bind))
        _ -> "[#{:inet.ntoa(bind)}]"
      end

    "http://#{host}:#{port}"
  end
end
