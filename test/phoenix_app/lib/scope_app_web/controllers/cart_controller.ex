defmodule ScopeAppWeb.CartController do
  use ScopeAppWeb, :controller

  def show(conn, _params) do
    cart = ScopeApp.Cart.show()
    json(conn, %{items: cart.items, total: cart.total})
  end

  def add(conn, %{"item" => item} = params) do
    price = int(params, "price", 1)
    cart = ScopeApp.Cart.add(item, price, int(params, "delay_ms", 0))
    conn |> put_status(201) |> json(%{items: cart.items, total: cart.total})
  end

  def boom(_conn, _params), do: raise(ArgumentError, "boom requested")

  defp int(params, key, default),
    do: params |> Map.get(key, default) |> to_string() |> String.to_integer()
end
